/**
 * A private network of Linux network namespaces for a local cluster, so that a test can cut one
 * node off from the others (a network partition) while the processes keep running.
 *
 *   root namespace (the test, its clients)
 *     bridge sb<tag>  10.A.B.1/24
 *       ├── veth sv<tag>n1 ══ eth0 10.A.B.11 in namespace strand-<tag>-1 (node 1)
 *       ├── veth sv<tag>n2 ══ eth0 10.A.B.12 in namespace strand-<tag>-2 (node 2)
 *       └── ...
 *
 * Each node process runs inside its own namespace (`ip netns exec`, which execs, so the child's
 * pid is the node's and kill -9 reaches it). The nodes reach each other through the bridge, and
 * the clients in the root namespace reach every node's address through the bridge's address.
 * `isolate(i)` brings the root end of node i's veth link down: nothing goes in or out of node i
 * (packets are dropped, connections hang as they would on a real partition — no resets);
 * `heal(i)` brings it up again. No iptables: links only.
 *
 * Needs Linux, root (CAP_NET_ADMIN) and iproute2's `ip`; `netnsUnavailable()` says why not.
 * Every name carries the creating process's pid, so namespaces leaked by a process that died are
 * recognised and removed by the next one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';

function ip(args: string[], allowFail = false): string {
  const r = spawnSync(IP, args, { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0 && !allowFail) throw new Error(`ip ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout ?? '';
}

let availability: string | null | undefined;

/** Null when namespaces can be made here; otherwise the reason they cannot (for a test's skip message). */
export function netnsUnavailable(): string | null {
  if (availability !== undefined) return availability;
  availability = probe();
  return availability;
}

function probe(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'network namespaces need root (CAP_NET_ADMIN); run the test as root';
  const v = spawnSync(IP, ['-V'], { encoding: 'utf8', timeout: 5000 });
  if (v.status !== 0) return 'iproute2 `ip` is not installed (apt-get install iproute2)';
  const name = `strand-probe-${process.pid}`;
  const add = spawnSync(IP, ['netns', 'add', name], { encoding: 'utf8', timeout: 5000 });
  if (add.status !== 0) return `cannot create a network namespace: ${(add.stderr || '').trim()}`;
  spawnSync(IP, ['netns', 'del', name], { timeout: 5000 });
  return null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces and bridges left by test processes that no longer run. */
export function removeLeakedNetworks(): void {
  for (const line of ip(['netns', 'list'], true).split('\n')) {
    const m = /^strand-(\d+)c\d+-\d+\b/.exec(line.trim());
    if (m !== null && !alive(Number(m[1]))) ip(['netns', 'del', line.trim().split(' ')[0]!], true);
  }
  for (const line of ip(['-o', 'link', 'show', 'type', 'bridge'], true).split('\n')) {
    const m = /^\d+: (sb(\d+)c\d+)[:@]/.exec(line);
    if (m !== null && !alive(Number(m[2]))) ip(['link', 'del', m[1]!], true);
  }
}

let networks = 0;
const live = new Set<NetnsNetwork>();
let exitHook = false;

export class NetnsNetwork {
  private readonly down = new Set<number>();
  private destroyed = false;

  private constructor(
    readonly tag: string,
    /** The first three octets, e.g. `10.123.4`. */
    readonly prefix: string,
    readonly nodeIds: number[],
  ) {}

  /** The bridge's address: what the nodes see the root namespace (the clients) as. */
  get gateway(): string {
    return `${this.prefix}.1`;
  }

  /** Node `id`'s address inside its namespace. */
  address(id: number): string {
    return `${this.prefix}.${10 + id}`;
  }

  namespace(id: number): string {
    return `strand-${this.tag}-${id}`;
  }

  private veth(id: number): string {
    return `sv${this.tag}n${id}`;
  }

  private get bridge(): string {
    return `sb${this.tag}`;
  }

  /** Creates the bridge and one namespace per node (ids 1..99). Throws if namespaces are unavailable. */
  static create(nodeIds: number[]): NetnsNetwork {
    const reason = netnsUnavailable();
    if (reason !== null) throw new Error(reason);
    for (const id of nodeIds) if (!Number.isInteger(id) || id < 0 || id > 99) throw new Error(`netns: node id ${id} outside 0..99`);
    removeLeakedNetworks();
    const tag = `${process.pid}c${++networks % 100}`;
    const used = ip(['-4', '-o', 'addr', 'show'], true);
    let prefix = '';
    for (let i = 0; i < 500; i++) {
      const candidate = `10.${100 + ((process.pid + i) % 100)}.${(networks * 7 + i) % 250}`;
      if (!used.includes(` ${candidate}.`)) {
        prefix = candidate;
        break;
      }
    }
    if (prefix === '') throw new Error('netns: no free 10.x.y.0/24 subnet');
    const net = new NetnsNetwork(tag, prefix, [...nodeIds]);
    live.add(net);
    if (!exitHook) {
      exitHook = true;
      // A test that crashes or is cancelled must not leave namespaces behind.
      process.on('exit', () => {
        for (const n of live) n.destroy();
      });
    }
    try {
      ip(['link', 'add', net.bridge, 'type', 'bridge']);
      ip(['addr', 'add', `${net.gateway}/24`, 'dev', net.bridge]);
      ip(['link', 'set', net.bridge, 'up']);
      for (const id of nodeIds) {
        const ns = net.namespace(id);
        ip(['netns', 'add', ns]);
        ip(['link', 'add', net.veth(id), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
        ip(['link', 'set', net.veth(id), 'master', net.bridge, 'up']);
        ip(['-n', ns, 'addr', 'add', `${net.address(id)}/24`, 'dev', 'eth0']);
        ip(['-n', ns, 'link', 'set', 'lo', 'up']);
        ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
        ip(['-n', ns, 'route', 'add', 'default', 'via', net.gateway]);
      }
    } catch (e) {
      net.destroy();
      throw e;
    }
    return net;
  }

  /** The command prefix that runs a program inside node `id`'s namespace. */
  execPrefix(id: number): string[] {
    return [IP, 'netns', 'exec', this.namespace(id)];
  }

  /** Cuts node `id` off from every other node and from the root namespace. */
  isolate(id: number): void {
    ip(['link', 'set', this.veth(id), 'down']);
    this.down.add(id);
  }

  heal(id: number): void {
    ip(['link', 'set', this.veth(id), 'up']);
    this.down.delete(id);
  }

  isIsolated(id: number): boolean {
    return this.down.has(id);
  }

  /** Deletes the namespaces (their veth pairs go with them) and the bridge. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const id of this.nodeIds) ip(['netns', 'del', this.namespace(id)], true);
    ip(['link', 'del', this.bridge], true);
  }
}
