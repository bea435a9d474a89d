/**
 * One broker per data directory, as Kafka's `.lock` in each log dir (held with
 * FileChannel.tryLock): a second broker on the same directory would recover, truncate and append
 * to the logs the first one is writing.
 *
 * Node has no file locks, so the lock is a listening Unix socket:
 *  - on Linux, in the abstract namespace, named after the directory's real path: the kernel
 *    releases it when the process exits, kill -9 included, so nothing stale is ever left;
 *  - elsewhere, a socket file `.lock` in the directory: one left by a process that died refuses
 *    connections, and is then removed and taken.
 * The holder answers a connection with its pid, which the refusal names. An abstract socket
 * belongs to a network namespace: two brokers in different network namespaces (containers, the
 * cluster harness's `netns` mode) sharing one directory are not caught.
 */
import { createHash } from 'node:crypto';
import { realpathSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';

/** The data directory is held by another broker (or another broker in this process). */
export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holderPid: string,
  ) {
    super(`data directory ${dir} is in use by another Strand broker (pid ${holderPid}): one broker per data directory`);
    this.name = 'DataDirLockedError';
  }
}

export class DataDirLock {
  private released = false;

  private constructor(
    private readonly server: Server,
    /** The socket file, when not in the abstract namespace. */
    private readonly file: string | null,
  ) {}

  /** Takes the lock of `dir` (which must exist), or throws DataDirLockedError. */
  static async acquire(dir: string, opts: { abstract?: boolean } = {}): Promise<DataDirLock> {
    const abstract = opts.abstract ?? process.platform === 'linux';
    const real = realpathSync(dir);
    const address = abstract ? `\0strand-data-dir-${createHash('sha256').update(real).digest('hex').slice(0, 40)}` : join(real, '.lock');
    for (let attempt = 0; ; attempt++) {
      try {
        return new DataDirLock(await listen(address), abstract ? null : address);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
        const holder = await holderPid(address);
        if (holder !== null || abstract || attempt > 0) throw new DataDirLockedError(real, holder ?? 'unknown');
        // A socket file whose process died: nobody listens on it any more.
        rmSync(address, { force: true });
      }
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.server.close();
    if (this.file !== null) rmSync(this.file, { force: true });
  }
}

function listen(address: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.end(`${process.pid}\n`);
    });
    server.once('error', reject);
    server.listen(address, () => {
      server.off('error', reject);
      server.on('error', () => {});
      // The lock must not keep the process alive.
      server.unref();
      resolve(server);
    });
  });
}

/** The pid the holder of `address` answers with; null when nobody listens there. */
function holderPid(address: string): Promise<string | null> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect(address);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('unknown');
    }, 2000);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(answer.trim() || 'unknown');
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}
