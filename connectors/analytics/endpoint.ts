/**
 * Analytics while an embedded run holds chDB. chDB locks its data directory per process (see
 * connectors/sinks/connection.ts explainChdbLock), so `report` and `query` in another process cannot open it
 * while `run` writes. The process that holds it therefore answers them: a small HTTP server on 127.0.0.1
 * (a random port) that runs the report and read-only queries on the sink's own connection, announced by
 * `<dataDir>/analytics-endpoint.json` ({pid, port, token}, mode 0600, written atomically, removed on close).
 * A request must carry the file's token (`Authorization: Bearer …`), so only who can read the data
 * directory can ask; queries pass the same read-only gate as `swe-stream query` and run with a query-level
 * `readonly = 1` (connectors/analytics/readonly.ts).
 *
 * Routes: `GET /report` → the {@link Report} JSON; `POST /query` with `{"sql": "…"}` → `{"rows": […]}`;
 * errors → `{"error", "retriable", "refused"}` with 400 (refused or engine error) / 401 / 404 / 500.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouse } from '../sinks/connection.js';
import { ClickHouseStoreError, toStoreError } from '../sinks/connection.js';
import { logger } from '../../streams/log.js';
import { assertReadOnly, ReadOnlyViolation, withReadonlySetting } from './readonly.js';
import { buildReport, type Report } from './views.js';

const log = logger({ component: 'analytics-endpoint' });

/** The announcement file in the data directory. */
export const ENDPOINT_FILE = 'analytics-endpoint.json';
/** Largest accepted request body (a query), bytes. */
const MAX_BODY_BYTES = 1 << 20;

/** What the announcement file holds. */
interface Announcement {
  pid: number;
  port: number;
  token: string;
  database: string;
}

/** A running endpoint. */
export interface AnalyticsEndpoint {
  port: number;
  /** Stop answering and remove the announcement file. Idempotent. */
  close(): Promise<void>;
}

/**
 * Serve `report` and `query` from `ch` (the running sink's connection) and announce it in `dataDir`.
 * @throws Error when the port cannot be bound or the file cannot be written
 */
export async function startAnalyticsEndpoint(ch: ClickHouse, dataDir: string): Promise<AnalyticsEndpoint> {
  const token = randomBytes(24).toString('hex');
  const server = createServer((req, res) => void handle(ch, token, req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const file = join(dataDir, ENDPOINT_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ pid: process.pid, port, token, database: ch.database } satisfies Announcement), { mode: 0o600 });
  renameSync(tmp, file);
  log.info({ port }, 'analytics endpoint: report and query answered while the run holds chDB');
  let closed = false;
  return {
    port,
    async close() {
      if (closed) return;
      closed = true;
      rmSync(file, { force: true });
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function handle(ch: ClickHouse, token: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  if (req.headers.authorization !== `Bearer ${token}`) return void send(401, { error: 'unauthorised', retriable: false });
  try {
    if (req.method === 'GET' && req.url === '/report') return void send(200, await buildReport(ch));
    if (req.method === 'POST' && req.url === '/query') {
      const body = JSON.parse(await readBody(req)) as { sql?: unknown };
      if (typeof body.sql !== 'string') return void send(400, { error: 'body must be {"sql": "…"}', retriable: false, refused: true });
      const sql = assertReadOnly(body.sql, await tableFunctions(ch));
      // Unqualified names resolve to the analytics database, as in `swe-stream query`; the sink always qualifies
      // its tables, so the session's default database is free to set.
      await ch.command(`USE ${ch.database}`);
      return void send(200, { rows: await ch.rows(withReadonlySetting(sql)) });
    }
    send(404, { error: `no route ${req.method} ${req.url}`, retriable: false });
  } catch (err) {
    if (err instanceof ReadOnlyViolation) return void send(400, { error: err.message, retriable: false, refused: true });
    if (err instanceof SyntaxError) return void send(400, { error: `bad request: ${err.message}`, retriable: false, refused: true });
    const e = toStoreError(err, 'query failed');
    send(e.retriable ? 500 : 400, { error: e.message, retriable: e.retriable, code: e.code });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new SyntaxError(`request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Lower-case names of the engine's table functions (system.table_functions), for the read-only gate; undefined
 * when the engine cannot list them (the gate's own list still applies).
 */
export async function tableFunctions(ch: Pick<ClickHouse, 'rows'>): Promise<Set<string> | undefined> {
  try {
    return new Set((await ch.rows<{ name: string }>('SELECT name FROM system.table_functions')).map((r) => r.name.toLowerCase()));
  } catch {
    return undefined; // an engine without the table: the static list guards alone
  }
}

/** A client of a running endpoint, as found through the data directory. */
export interface EndpointClient {
  report(): Promise<Report>;
  /** @throws ReadOnlyViolation when refused by the gate; ClickHouseStoreError for engine or transport errors */
  query(sql: string): Promise<Array<Record<string, unknown>>>;
}

/**
 * The endpoint of the process holding `dataDir`'s chDB, or undefined when there is none: no file, or a file
 * left by a process that no longer exists (a `kill -9`), which is then ignored.
 */
export function findAnalyticsEndpoint(dataDir: string): EndpointClient | undefined {
  let a: Announcement;
  try {
    a = JSON.parse(readFileSync(join(dataDir, ENDPOINT_FILE), 'utf8')) as Announcement;
  } catch {
    return undefined;
  }
  try {
    process.kill(a.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
  }
  const base = `http://127.0.0.1:${a.port}`;
  const call = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    let r: Response;
    try {
      r = await fetch(`${base}${path}`, { ...init, headers: { ...init.headers, authorization: `Bearer ${a.token}`, 'content-type': 'application/json' }, signal: AbortSignal.timeout(120_000) });
    } catch (err) {
      throw new ClickHouseStoreError(`the running swe-stream (pid ${a.pid}) does not answer at ${base}: ${(err as Error).message}`, { retriable: true, code: 'ENDPOINT_UNREACHABLE', cause: err });
    }
    const body = (await r.json()) as T & { error?: string; retriable?: boolean; refused?: boolean; code?: string };
    if (r.ok) return body;
    if (body.refused) throw new ReadOnlyViolation(body.error ?? 'refused');
    throw new ClickHouseStoreError(body.error ?? `HTTP ${r.status}`, { retriable: body.retriable ?? r.status >= 500, code: body.code });
  };
  return {
    report: () => call<Report>('/report'),
    query: async (sql) => (await call<{ rows: Array<Record<string, unknown>> }>('/query', { method: 'POST', body: JSON.stringify({ sql }) })).rows,
  };
}
