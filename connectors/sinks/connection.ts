/**
 * One way to reach ClickHouse for every analytics component (sink, report, export, query): embedded chDB
 * (ClickHouse 26.x in process, data under `<dataDir>/chdb`) plugged into `@clickhouse/client` through
 * `chdb/connection`, or a ClickHouse server over HTTP. Both go through the same `@clickhouse/client`
 * calls, so the sink and the views have one code path.
 *
 * Compatibility (checked on Debian's clickhouse-server 18.16.1 and chDB 26.7): the DDL and every query in
 * streams/ avoid what 18.16 lacks — Bool, DateTime64, JSON, LowCardinality (experimental there),
 * `insert_deduplication_token`, the Parquet output format. What differs is detected at open from
 * system.settings / system.merge_tree_settings / system.formats, never guessed from the version string
 * ({@link Capabilities}).
 */
import { createClient, ClickHouseError, ClickHouseLogLevel, type ClickHouseClient, type ClickHouseClientConfigOptions, type Logger, type LogParams, type ErrorLogParams, type WarnLogParams } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { logger } from '../../streams/log.js';

const log = logger({ component: 'clickhouse' });

/** Folder of the DDL files (`infra/clickhouse/NNN_*.sql`), applied in name order. */
export const DDL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../infra/clickhouse');

/** Default database name; every table lives in it. */
export const DEFAULT_DATABASE = 'swe_stream';

/** Where to reach ClickHouse. `url` set → that server; otherwise chDB with data in `<dataDir>/chdb`. */
export interface ClickHouseTarget {
  /** HTTP URL of a ClickHouse server, e.g. `http://127.0.0.1:8123`. Absent → embedded chDB. */
  url?: string;
  /** The pipeline's data directory; chDB keeps its files in `<dataDir>/chdb`. Required for chDB. */
  dataDir?: string;
  /** Database holding the tables (default {@link DEFAULT_DATABASE}); letters, digits, underscore. */
  database?: string;
  /** Per-request timeout against a server, ms (default 30 000). Ignored by chDB. */
  requestTimeoutMs?: number;
}

/** What the connected engine supports, detected at open. */
export interface Capabilities {
  /** `insert_deduplication_token` setting exists (ClickHouse ≥ 22.2; not 18.16). */
  dedupToken: boolean;
  /** `non_replicated_deduplication_window` MergeTree setting exists (≥ 20.6): block dedup without replication. */
  nonReplicatedDedup: boolean;
  /** The Parquet output format exists (chDB yes, 18.16 no). */
  parquet: boolean;
}

/**
 * An error from talking to ClickHouse, with whether trying again may help.
 * `retriable` is true for transport failures (refused, reset, timeout) and for the server error codes
 * that mean "busy or temporarily unavailable"; false for syntax, type and unknown-identifier errors.
 */
export class ClickHouseStoreError extends Error {
  readonly retriable: boolean;
  /** The ClickHouse error code name or number when the server answered, else the Node error code (ECONNREFUSED…). */
  readonly code: string | undefined;
  constructor(message: string, opts: { retriable: boolean; code?: string; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = 'ClickHouseStoreError';
    this.retriable = opts.retriable;
    this.code = opts.code;
  }
}

/**
 * Server error codes worth retrying (ClickHouse src/Common/ErrorCodes.cpp): TIMEOUT_EXCEEDED 159,
 * TOO_MANY_SIMULTANEOUS_QUERIES 202, NO_FREE_CONNECTION 203, SOCKET_TIMEOUT 209, NETWORK_ERROR 210,
 * ABORTED 236, MEMORY_LIMIT_EXCEEDED 241, TABLE_IS_READ_ONLY 242, TOO_MANY_PARTS 252,
 * ALL_CONNECTION_TRIES_FAILED 279, REPLICA_IS_NOT_IN_QUORUM 286, QUERY_WAS_CANCELLED 394, KEEPER_EXCEPTION 999.
 * Names are listed too because chDB and newer servers report names.
 */
const RETRIABLE_CODES = new Set([
  '159', '202', '203', '209', '210', '236', '241', '242', '252', '279', '286', '394', '999',
  'TIMEOUT_EXCEEDED', 'TOO_MANY_SIMULTANEOUS_QUERIES', 'NO_FREE_CONNECTION', 'SOCKET_TIMEOUT', 'NETWORK_ERROR',
  'ABORTED', 'MEMORY_LIMIT_EXCEEDED', 'TABLE_IS_READ_ONLY', 'TOO_MANY_PARTS', 'ALL_CONNECTION_TRIES_FAILED',
  'REPLICA_IS_NOT_IN_QUORUM', 'QUERY_WAS_CANCELLED', 'KEEPER_EXCEPTION',
]);

/** Map anything thrown by @clickhouse/client or chDB to a {@link ClickHouseStoreError}. Never throws. */
export function toStoreError(err: unknown, what: string): ClickHouseStoreError {
  if (err instanceof ClickHouseStoreError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  // chdb/connection throws the ClickHouseError of its own @clickhouse/client-common copy, so a class
  // check alone misses it; the constructor name and the string code identify both copies.
  const isServerError = err instanceof ClickHouseError || (e.constructor?.name === 'ClickHouseError' && typeof (e as { code?: unknown }).code === 'string');
  if (isServerError) {
    // The engine answered: the request reached it, so only "busy" codes are worth another try.
    const ce = e as unknown as { code: string; type?: string };
    const code = ce.code || ce.type;
    const retriable = RETRIABLE_CODES.has(String(ce.code)) || (ce.type !== undefined && RETRIABLE_CODES.has(ce.type));
    return new ClickHouseStoreError(`${what}: ${e.message.split('\n')[0]}`, { retriable, code, cause: err });
  }
  // 18.16 phrases errors as "Code: 164, e.displayText() = DB::Exception: …", which the client's
  // parseError does not recognise, so it throws a plain Error: the server answered all the same.
  const legacy = /^Code: (\d+)[,.]/.exec(e.message);
  if (legacy) {
    return new ClickHouseStoreError(`${what}: ${e.message.split('\n')[0]}`, { retriable: RETRIABLE_CODES.has(legacy[1]!), code: legacy[1], cause: err });
  }
  const nodeCode = (e as { code?: string }).code;
  const name = e.name;
  // chDB query errors (syntax, unknown table) are deterministic; its connection/closed errors are not.
  if (/^Chdb(Query|Syntax|Bind|Compile|Insert)Error$/.test(name)) {
    return new ClickHouseStoreError(`${what}: ${e.message.split('\n')[0]}`, { retriable: false, code: name, cause: err });
  }
  // Anything else is transport-level (ECONNREFUSED, ECONNRESET, socket hang up, timeout): retriable.
  return new ClickHouseStoreError(`${what}: ${e.message.split('\n')[0]}`, { retriable: true, code: nodeCode ?? name, cause: err });
}

/** Routes @clickhouse/client's own log lines into pino at debug level: we report errors ourselves. */
export class PinoClientLogger implements Logger {
  trace(p: LogParams): void { log.trace({ module: p.module, args: p.args }, p.message); }
  debug(p: LogParams): void { log.debug({ module: p.module, args: p.args }, p.message); }
  info(p: LogParams): void { log.debug({ module: p.module, args: p.args }, p.message); }
  warn(p: WarnLogParams): void { log.debug({ module: p.module, err: p.err?.message }, p.message); }
  error(p: ErrorLogParams): void { log.debug({ module: p.module, err: p.err.message }, p.message); }
}

/**
 * An open ClickHouse handle shared by the sink and the analytics: the client, which backend it is, the
 * detected capabilities, and JSON query helpers that normalise 64-bit integers to numbers.
 */
export interface ClickHouse {
  readonly client: ClickHouseClient;
  readonly backend: 'chdb' | 'server';
  readonly database: string;
  /** `SELECT version()`, e.g. `18.16.1` or `26.7.2.1`. */
  readonly version: string;
  readonly capabilities: Capabilities;
  /** Absolute path of the chDB data folder, or undefined for a server. */
  readonly chdbPath: string | undefined;
  /**
   * Run a SELECT and return its rows (JSONEachRow). 64-bit integers come back as numbers on both backends.
   * @throws ClickHouseStoreError (retriable per {@link toStoreError})
   */
  rows<T = Record<string, unknown>>(sql: string, settings?: Record<string, string | number>): Promise<T[]>;
  /** Run a statement that returns nothing (DDL). @throws ClickHouseStoreError */
  command(sql: string): Promise<void>;
  /** Close the client (and the chDB connection). Idempotent. */
  close(): Promise<void>;
}

const DB_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Open ClickHouse (chDB or server), detect capabilities and apply the DDL of infra/clickhouse
 * idempotently (CREATE … IF NOT EXISTS; ALTER … MODIFY SETTING only where supported).
 * @throws ClickHouseStoreError when the engine cannot be reached (retriable) or the DDL fails;
 *         Error for a bad database name or a chDB target without dataDir (not retriable).
 */
export async function openClickHouse(target: ClickHouseTarget, opts: { applyDdl?: boolean } = {}): Promise<ClickHouse> {
  const database = target.database ?? DEFAULT_DATABASE;
  if (!DB_NAME_RE.test(database)) throw new ClickHouseStoreError(`invalid database name ${JSON.stringify(database)}`, { retriable: false });
  let client: ClickHouseClient;
  let chdbPath: string | undefined;
  const common = {
    log: { LoggerClass: PinoClientLogger, level: ClickHouseLogLevel.WARN },
    // 18.16 quotes 64-bit integers in JSON by default; chDB does not. Unquoted keeps one row shape.
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  } as const;
  if (target.url) {
    client = createClient({ ...common, url: target.url, request_timeout: target.requestTimeoutMs ?? 30_000 });
  } else {
    if (!target.dataDir) throw new ClickHouseStoreError('chDB needs a dataDir (or give a ClickHouse server url)', { retriable: false });
    chdbPath = resolve(target.dataDir, 'chdb');
    mkdirSync(chdbPath, { recursive: true });
    // chdb types its Connection against the separate @clickhouse/client-common package, whose settings
    // type differs nominally from the one bundled in @clickhouse/client 1.23; the runtime contract is the same.
    let connection: ClickHouseClientConfigOptions['connection'];
    try {
      connection = createChdbConnection({ path: chdbPath }) as unknown as ClickHouseClientConfigOptions['connection'];
    } catch (err) {
      const e = explainChdbLock(err, chdbPath);
      throw e instanceof ClickHouseStoreError ? e : toStoreError(err, `cannot open chDB at ${chdbPath}`);
    }
    client = createClient({ ...common, connection });
  }
  const backend = target.url ? 'server' : 'chdb';
  const rows = async <T>(sql: string, settings?: Record<string, string | number>): Promise<T[]> => {
    try {
      const rs = await client.query({ query: sql, format: 'JSONEachRow', clickhouse_settings: settings });
      return await rs.json<T>();
    } catch (err) {
      throw toStoreError(err, 'query failed');
    }
  };
  const command = async (sql: string): Promise<void> => {
    try {
      await client.command({ query: sql });
    } catch (err) {
      throw toStoreError(err, 'statement failed');
    }
  };
  let version: string;
  let capabilities: Capabilities;
  try {
    version = (await rows<{ v: string }>('SELECT version() AS v'))[0]?.v ?? 'unknown';
    const settings = await rows<{ name: string }>("SELECT name FROM system.settings WHERE name = 'insert_deduplication_token'");
    const mts = await rows<{ name: string }>("SELECT name FROM system.merge_tree_settings WHERE name = 'non_replicated_deduplication_window'");
    const fmts = await rows<{ name: string }>("SELECT name FROM system.formats WHERE name = 'Parquet' AND is_output = 1");
    capabilities = { dedupToken: settings.length > 0, nonReplicatedDedup: mts.length > 0, parquet: fmts.length > 0 };
  } catch (err) {
    await client.close().catch((e: unknown) => log.debug({ err: String(e) }, 'close after failed open'));
    throw chdbPath ? explainChdbLock(err, chdbPath) : err;
  }
  let closed = false;
  const ch: ClickHouse = {
    client, backend, database, version, capabilities, chdbPath, rows, command,
    async close() {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
  if (opts.applyDdl !== false) {
    try {
      await applyDdl(ch);
    } catch (err) {
      await ch.close().catch((e: unknown) => log.debug({ err: String(e) }, 'close after failed DDL'));
      throw err;
    }
  }
  log.debug({ backend, version, database, capabilities }, 'clickhouse open');
  return ch;
}

/**
 * chDB holds its data directory exclusively per process (a lock on `<path>/status`, as clickhouse-local
 * does): a second process — `swe-stream report` while `swe-stream run` writes — cannot open it. Say so
 * plainly; retriable, because the directory frees when the other process ends.
 */
function explainChdbLock(err: unknown, chdbPath: string): unknown {
  const chain: string[] = [];
  for (let e: unknown = err; e instanceof Error && chain.length < 5; e = e.cause) chain.push(e.message);
  if (!chain.some((m) => /Cannot lock file|Another server instance|Failed to create connection/.test(m))) return err;
  return new ClickHouseStoreError(
    `the chDB data directory ${chdbPath} is in use by another process (a running \`swe-stream run\`?); ` +
      'stop it, or run the pipeline with a ClickHouse server (--clickhouse-url) to query while it runs',
    { retriable: true, code: 'CHDB_LOCKED', cause: err },
  );
}

/**
 * Apply every `infra/clickhouse/*.sql` file in name order. `{db}` is replaced by the database name;
 * statements are split on `;` at line ends. A file whose header says
 * `-- requires-merge-tree-setting: NAME` runs only when the engine has that MergeTree setting.
 * Idempotent: all statements are IF NOT EXISTS or MODIFY SETTING.
 * @throws ClickHouseStoreError from the first failing statement
 */
export async function applyDdl(ch: ClickHouse): Promise<void> {
  const files = readdirSync(DDL_DIR).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  for (const file of files) {
    const text = readFileSync(join(DDL_DIR, file), 'utf8');
    const req = /^-- requires-merge-tree-setting:\s*(\S+)/m.exec(text);
    if (req && req[1] === 'non_replicated_deduplication_window' && !ch.capabilities.nonReplicatedDedup) continue;
    const body = text.split('\n').filter((l) => !l.trim().startsWith('--')).join('\n').replaceAll('{db}', ch.database);
    for (const stmt of body.split(/;\s*\n|;\s*$/).map((s) => s.trim()).filter(Boolean)) {
      await ch.command(stmt);
    }
  }
}
