/**
 * A private ClickHouse server (Debian's clickhouse-server 18.16) on a free port with its own data folder,
 * for tests that must stop and restart the server without disturbing the shared one at :8123.
 * `stop()` kills only the process this helper started (by pid); `start()` again reuses the data folder.
 */
import { afterAll, beforeAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SERVER_BIN = '/usr/sbin/clickhouse-server';

/** True when the Debian server binary is installed. */
export const haveServerBinary = (): boolean => existsSync(SERVER_BIN);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Answer of `GET /` ("Ok.") or undefined when nothing listens. */
async function ping(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return r.ok;
  } catch {
    return false;
  }
}

/** Poll `check` every 100 ms until it is true, or throw after `ms`. Readiness wait, not synchronisation by sleep. */
export async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export class PrivateServer {
  readonly dir: string;
  httpPort = 0;
  private proc: ChildProcess | undefined;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'swe-stream-ch-'));
  }

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** Start (or restart on the same port and data) and wait until `GET /` answers. */
  async start(): Promise<void> {
    if (!this.httpPort) this.httpPort = await freePort();
    const tcpPort = await freePort();
    const cfg = join(this.dir, 'config.xml');
    writeFileSync(cfg, `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${this.dir}/server.log</log><errorlog>${this.dir}/err.log</errorlog><size>10M</size><count>1</count></logger>
  <http_port>${this.httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${this.dir}/data/</path>
  <tmp_path>${this.dir}/tmp/</tmp_path>
  <user_files_path>${this.dir}/user_files/</user_files_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>104857600</mark_cache_size>
  <uncompressed_cache_size>104857600</uncompressed_cache_size>
</yandex>
`);
    this.proc = spawn(SERVER_BIN, [`--config-file=${cfg}`], { stdio: 'ignore' });
    const p = this.proc;
    let exited = false;
    p.once('exit', () => { exited = true; });
    await waitFor(async () => {
      if (exited) throw new Error(`clickhouse-server exited during start; see ${this.dir}/err.log`);
      return ping(this.url);
    }, 30_000, `clickhouse-server on ${this.url}`);
  }

  /** Stop the server this helper started (SIGKILL: the point is an abrupt outage) and wait until it is gone. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await gone;
    this.proc = undefined;
  }

  /** Stop and remove the data folder. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * URL of a shared ClickHouse server for tests: SWE_STREAM_CLICKHOUSE_URL (as CI sets it after
 * `infra/clickhouse.sh start`) when it is set and answers, else undefined — then the tests start a
 * {@link PrivateServer}, because other suites stop and restart the shared one at :8123 while they run.
 */
export async function sharedServerUrl(): Promise<string | undefined> {
  const url = process.env.SWE_STREAM_CLICKHOUSE_URL;
  return url && (await ping(url)) ? url : undefined;
}

/**
 * A TCP proxy in front of a server that, for the first `dropResponses` HTTP requests whose text contains
 * `match`, forwards the request but cuts the client connection as soon as the server starts answering:
 * the write happened, the client never learns it — the case a dedup token exists for.
 */
export class LossyProxy {
  port = 0;
  dropped = 0;
  private server: import('node:net').Server | undefined;

  constructor(private readonly targetPort: number, private readonly match: string, private dropResponses: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const net = await import('node:net');
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      let seen = '';
      let drop = false;
      client.on('data', (d) => {
        seen += d.toString('latin1');
        if (!drop && this.dropResponses > 0 && seen.includes(this.match)) {
          drop = true;
          this.dropResponses--;
        }
        upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (drop) {
          this.dropped++;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(d);
      });
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.end());
      upstream.on('close', () => client.end());
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/**
 * Drop the databases this test process created on a shared server (names `t_<suite>_…_<pid>…`), so the
 * server other suites use stays clean. Only databases whose name contains this process id are touched.
 */
export async function dropTestDatabases(url: string, prefix: string): Promise<void> {
  const pid = String(process.pid);
  const list = await fetch(url, { method: 'POST', body: `SELECT name FROM system.databases WHERE startsWith(name, '${prefix}')` });
  const names = (await list.text()).split('\n').filter((n) => n && n.includes(pid));
  for (const n of names) {
    const r = await fetch(url, { method: 'POST', body: `DROP DATABASE IF EXISTS ${n}` });
    if (!r.ok) throw new Error(`DROP DATABASE ${n}: ${await r.text()}`);
  }
}

/**
 * The ClickHouse targets of one test file: a temp data dir for chDB, and a server URL — the shared server
 * (SWE_STREAM_CLICKHOUSE_URL) when it answers, else a private server when the binary is installed, else
 * none. Registers the file's beforeAll/afterAll: databases named `t_<name>_…` are dropped from a shared
 * server afterwards, a private server is stopped, the data dir removed. Under CI=true a missing server fails the
 * file's beforeAll instead of skipping its server cases.
 */
export function clickHouseTargets(name: string): { dataDir: string; url: () => string | undefined } {
  const dataDir = mkdtempSync(join(tmpdir(), `swe-stream-${name}-`));
  let privateServer: PrivateServer | undefined;
  let serverUrl: string | undefined;
  beforeAll(async () => {
    serverUrl = await sharedServerUrl();
    if (!serverUrl && haveServerBinary()) {
      privateServer = new PrivateServer();
      await privateServer.start();
      serverUrl = privateServer.url;
    }
    // In CI the server cases must run: an absent server is a broken setup, never a skip.
    if (!serverUrl && process.env.CI) throw new Error('no ClickHouse server: SWE_STREAM_CLICKHOUSE_URL does not answer and clickhouse-server is not installed (bash infra/clickhouse.sh start)');
  });
  afterAll(async () => {
    if (serverUrl && !privateServer) await dropTestDatabases(serverUrl, `t_${name}_`);
    await privateServer?.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { dataDir, url: () => serverUrl };
}
