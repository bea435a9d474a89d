/**
 * The web console's HTTP server (node:http): the single-page app as static files, its UI
 * libraries as ES modules straight from node_modules (no bundler), and a JSON API over Strand's
 * client. Started by `strand console --bootstrap-server ...` against any Kafka-compatible
 * cluster, or by `strand broker --console-port P`, which points it at the broker's own listener.
 *
 * JSON API (every answer is JSON; errors are `{ "error": { "code": <Kafka error name>, "message" } }`):
 *   GET    /api/cluster                          brokers, controller, log dirs, api versions
 *   GET    /api/topics[?internal=true]           topics with partitions, records, size on disk
 *   POST   /api/topics                           create: { name, partitions?, replicationFactor?, configs? }
 *   GET    /api/topics/NAME                      partitions (leader, replicas, ISR, offsets, size), configs
 *   POST   /api/topics/NAME/partitions           add partitions: { count } (the new total)
 *   POST   /api/topics/NAME/configs              edit configs: { set?: {name: value}, delete?: [name] }
 *   DELETE /api/topics/NAME?confirm=NAME         delete (the name typed again)
 *   GET    /api/topics/NAME/messages?partition=P&(offset=O|timestamp=T|from=end)&limit=N
 *   GET    /api/groups                           groups with state, members, lag
 *   GET    /api/groups/ID                        members, assignment, committed offsets and lag per partition
 *   POST   /api/groups/ID/reset-offsets          { topic, to: earliest|latest|offset|timestamp, offset?, timestamp?, confirm: ID }
 *   GET    /api/metrics                          records and bytes in/out per second (sampler.ts says how each is derived)
 *
 * Safety: it listens on 127.0.0.1 unless told otherwise and has no authentication. A write must be
 * a POST or DELETE with `Content-Type: application/json` (a cross-site form cannot send that) and,
 * when the browser sends an Origin, from this server's own origin; destructive calls also need the
 * resource's name repeated (`confirm`). Request bodies are limited to 1 MiB.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, type KafkaOptions } from '../client/kafka.js';
import type { Admin } from '../client/admin.js';
import { StrandError } from '../client/errors.js';
import type { ClientLogger } from '../client/logger.js';
import { ApiError, ConsoleApi } from './api.js';
import { TrafficSampler } from './sampler.js';

export interface ConsoleOptions {
  /** Bootstrap addresses of the cluster, host:port. */
  brokers: string[];
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Chart sampling interval (default 2000 ms). */
  sampleIntervalMs?: number;
  /** TLS and SASL settings for the console's client, as the client takes them. */
  ssl?: KafkaOptions['ssl'];
  sasl?: KafkaOptions['sasl'];
  logger?: ClientLogger;
}

export interface ConsoleServer {
  readonly host: string;
  readonly port: number;
  /** http://host:port/ */
  readonly url: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1 << 20;

/** The browser app: src/console/app, beside this file in a clone and in the installed package alike. */
function appDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // Compiled: dist/src/console/server.js → src/console/app. Run from source: src/console/app.
  for (const candidate of [join(here, '..', '..', '..', 'src', 'console', 'app'), join(here, 'app')]) if (existsSync(join(candidate, 'index.html'))) return candidate;
  throw new Error(`the console's browser app (src/console/app) is missing next to ${here}`);
}

/** The root folder of an installed npm package. */
function packageRoot(name: string): string {
  const main = createRequire(import.meta.url).resolve(name);
  const marker = `${sep}node_modules${sep}${name}${sep}`;
  const i = main.lastIndexOf(marker);
  if (i < 0) throw new Error(`cannot locate the package ${name} (resolved to ${main})`);
  return main.slice(0, i + marker.length);
}

/** The UI libraries the app imports (by the names in index.html's import map), from node_modules. */
function vendorFiles(): Map<string, string> {
  const preact = packageRoot('preact');
  const htm = packageRoot('htm');
  const uplot = packageRoot('uplot');
  return new Map([
    ['/vendor/preact.js', join(preact, 'dist', 'preact.module.js')],
    ['/vendor/preact-hooks.js', join(preact, 'hooks', 'dist', 'hooks.module.js')],
    ['/vendor/htm.js', join(htm, 'dist', 'htm.module.js')],
    ['/vendor/uplot.js', join(uplot, 'dist', 'uPlot.esm.js')],
    ['/vendor/uplot.css', join(uplot, 'dist', 'uPlot.min.css')],
  ]);
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** HTTP status for a Kafka error name. */
function statusOf(code: string): number {
  if (code === 'UNKNOWN_TOPIC_OR_PARTITION' || code === 'GROUP_ID_NOT_FOUND' || code === 'UNKNOWN_TOPIC_ID' || code === 'NOT_FOUND') return 404;
  if (code === 'TOPIC_ALREADY_EXISTS' || code === 'NON_EMPTY_GROUP' || code === 'GROUP_SUBSCRIBED_TO_TOPIC') return 409;
  if (code === 'NETWORK_EXCEPTION' || code === 'REQUEST_TIMEOUT' || code === 'CLIENT_CLOSED') return 502;
  if (code.endsWith('_AUTHORIZATION_FAILED')) return 403;
  if (code === 'UNSUPPORTED_VERSION') return 501;
  return 400;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'INVALID_REQUEST', `request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new HttpError(400, 'INVALID_REQUEST', 'the request body is not valid JSON'));
      }
    });
  });
}

export async function startConsole(opts: ConsoleOptions): Promise<ConsoleServer> {
  if (opts.brokers.length === 0) throw new Error('the console needs at least one bootstrap address');
  const app = appDir();
  const vendor = vendorFiles();
  // The page's only inline script is its import map: allowed by its hash, nothing else inline.
  const indexHtml = await readFile(join(app, 'index.html'), 'utf8');
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(indexHtml)?.[1] ?? '';
  const csp = `default-src 'self'; script-src 'self' 'sha256-${createHash('sha256').update(importMap).digest('base64')}'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'`;
  const kafka = new Kafka({
    brokers: opts.brokers,
    clientId: 'strand-console',
    connectTimeoutMs: 5000,
    requestTimeoutMs: 15000,
    retry: { retries: 3, initialRetryTimeMs: 100, maxRetryTimeMs: 1000 },
    ...(opts.ssl !== undefined ? { ssl: opts.ssl } : {}),
    ...(opts.sasl !== undefined ? { sasl: opts.sasl } : {}),
    logger: opts.logger,
  });
  const admin: Admin = kafka.admin();
  const api = new ConsoleApi(kafka, admin, opts.brokers);
  const sampler = new TrafficSampler(admin, { intervalMs: opts.sampleIntervalMs ?? 2000 });
  const host = opts.host ?? '127.0.0.1';

  async function route(req: IncomingMessage, url: URL): Promise<unknown> {
    const method = req.method ?? 'GET';
    const parts = url.pathname.split('/').slice(2).map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        throw new HttpError(400, 'INVALID_REQUEST', 'malformed percent-encoding in the path');
      }
    });
    if (method !== 'GET') {
      if (method !== 'POST' && method !== 'DELETE') throw new HttpError(405, 'INVALID_REQUEST', `${method} is not allowed`);
      const type = req.headers['content-type'] ?? '';
      if (!/^application\/json\b/.test(type)) throw new HttpError(415, 'INVALID_REQUEST', 'writes need Content-Type: application/json');
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`) throw new HttpError(403, 'INVALID_REQUEST', `cross-origin writes are refused (Origin ${origin})`);
    }
    const body = method === 'POST' ? await readBody(req) : undefined;
    const [a, b, c, ...rest] = parts;
    const none = (): never => {
      throw new HttpError(method === 'GET' ? 404 : 405, 'NOT_FOUND', `no such api: ${method} ${url.pathname}`);
    };
    if (rest.length > 0) none();
    switch (a) {
      case 'cluster':
        if (b === undefined && method === 'GET') return api.cluster();
        return none();
      case 'metrics':
        if (b === undefined && method === 'GET') return sampler.read();
        return none();
      case 'topics':
        if (b === undefined || b === '') {
          if (method === 'GET') return api.topics(url.searchParams.get('internal') === 'true');
          if (method === 'POST') return api.createTopic(body);
          return none();
        }
        if (c === undefined) {
          if (method === 'GET') return api.topic(b);
          if (method === 'DELETE') return api.deleteTopic(b, url.searchParams.get('confirm'));
          return none();
        }
        if (c === 'messages' && method === 'GET') return api.browse(b, url.searchParams);
        if (c === 'partitions' && method === 'POST') return api.addPartitions(b, body);
        if (c === 'configs' && method === 'POST') return api.alterConfigs(b, body);
        return none();
      case 'groups':
        if (b === undefined || b === '') return method === 'GET' ? api.groups() : none();
        if (c === undefined && method === 'GET') return api.group(b);
        if (c === 'reset-offsets' && method === 'POST') return api.resetOffsets(b, body);
        return none();
      default:
        return none();
    }
  }

  async function serveStatic(res: ServerResponse, pathname: string): Promise<void> {
    let file = vendor.get(pathname);
    if (file === undefined) {
      const rel = pathname === '/' || pathname === '/index.html' ? 'index.html' : pathname.startsWith('/app/') ? pathname.slice('/app/'.length) : null;
      if (rel === null) throw new HttpError(404, 'NOT_FOUND', `no such page: ${pathname}`);
      const full = normalize(join(app, rel));
      if (!full.startsWith(app + sep)) throw new HttpError(404, 'NOT_FOUND', `no such page: ${pathname}`);
      file = full;
    }
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch {
      throw new HttpError(404, 'NOT_FOUND', `no such file: ${pathname}`);
    }
    const ext = file.slice(file.lastIndexOf('.'));
    res.writeHead(200, {
      'content-type': TYPES[ext] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'content-security-policy': csp,
    });
    res.end(data);
  }

  const sendJson = (res: ServerResponse, status: number, v: unknown): void => {
    const text = JSON.stringify(v);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(text);
  };

  const server: Server = createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://console.invalid');
    } catch {
      sendJson(res, 400, { error: { code: 'INVALID_REQUEST', message: 'malformed URL' } });
      return;
    }
    const isApi = url.pathname === '/api' || url.pathname.startsWith('/api/');
    const work = isApi ? route(req, url).then((v) => sendJson(res, 200, v)) : req.method === 'GET' || req.method === 'HEAD' ? serveStatic(res, url.pathname) : Promise.reject(new HttpError(405, 'INVALID_REQUEST', 'pages are GET only'));
    work.catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof HttpError) return sendJson(res, e.status, { error: { code: e.code, message: e.message } });
      if (e instanceof ApiError) return sendJson(res, e.status, { error: { code: e.code, message: e.message } });
      if (e instanceof StrandError) return sendJson(res, statusOf(e.code), { error: { code: e.code, message: e.message, retriable: e.retriable } });
      opts.logger?.error('console request failed', { url: req.url, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      sendJson(res, 500, { error: { code: 'UNKNOWN_SERVER_ERROR', message: e instanceof Error ? e.message : String(e) } });
    });
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('console server has no address');
  const port = addr.port;
  let closing: Promise<void> | null = null;
  return {
    host,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await sampler.close();
        await admin.close();
      })();
      return closing;
    },
  };
}
