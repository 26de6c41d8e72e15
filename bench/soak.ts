/**
 * bench/soak — SIGKILL soak of `swe-stream run` (issue 14): the filter stage and the ClickHouse sink on a
 * multi-hour GH Archive input, killed with SIGKILL at random points and restarted until a run exits 0, then
 * compared with a clean run of the same input in another data directory (on Kafka: under another topic prefix
 * and ClickHouse database).
 *
 * Input: the real hour test/fixtures/gharchive/2015-01-01-12.json.gz as --hours hour files. Hour 0 is the file
 * itself (a symlink, as bench/filter.ts does); hour r ≥ 1 is the same hour with its PullRequestEvents
 * renumbered (PR number + r × stride, event id + r × 10^10), every other line byte for byte: a plain copy would
 * give the same PR events, so the same outcome ids, ten times, and a lost copy would hide behind the others in
 * ClickHouse (ReplacingMergeTree keeps one row per id).
 *
 * Per bus (`--bus embedded,kafka`):
 *   - clean: one `swe-stream run --stages filter --until-idle` (sink on) into its own data directory;
 *   - soak: the same command in another data directory, SIGKILLed --kills times at a random point (embedded:
 *     from spawn; Kafka: from the first consumer-group join, since after a SIGKILL the dead member holds the
 *     groups until its session times out), each time restarted, then run until it exits 0. A run that exits
 *     non-zero by itself is restarted like a supervisor would (counted in `crashes`, its stderr kept). On
 *     Kafka, in the middle of the kills, the broker is restarted under a running worker (`infra/kafka.sh stop`,
 *     then `start`, which waits for readiness; SWE_STREAM_STATE names the shared state folder).
 *   - compare, read with the project's readers (cli/bus.ts openBus, streams/read.ts readTopic): per topic the
 *     multiset of record identities (pr.events: key + archive event id; stage.outcomes: outcome id, kind and
 *     reason; pr.candidates / dead letters: key) of soak against clean: `lost` = copies the clean run has and
 *     the soak not, `duplicated` = copies beyond the clean run's. The embedded log writes outputs and the input's
 *     mark in one transaction, so there every extra copy counts. Kafka is at-least-once (no transaction between
 *     outputs and commit): an input redone after a kill writes its outcome again under the same deterministic
 *     id, counted in `replayed`; there `duplicated` counts only identities the clean run does not have (an
 *     outcome id with another kind or reason, or one that should not exist). ClickHouse: count() and the set of
 *     (outcome_id, kind, reason) of `stage_outcomes FINAL`, through `swe-stream query`, against the clean run's.
 * One JSON line per bus:
 *   {"bench":"soak","bus":"embedded","kills":N,"restarts":…,"crashes":…,"broker_restarts":0|1,"inputs":…,"outcomes":…,
 *    "lost":0,"duplicated":0,"replayed":…,"clickhouse_rows":…,"clean_rows":…,"equal":true,"wall_s":…,"clean_s":…,"load1":…}
 * Exit 1 when anything is lost, duplicated or unequal, or a run never completes (--run-timeout-s).
 * Usage: npx tsx bench/soak.ts [--bus embedded,kafka] [--kills 20] [--hours 10] [--keep] (SOAK_DEBUG=1: one stderr line per kill)
 *   Kafka: the broker SWE_STREAM_KAFKA_BROKERS, registry SWE_STREAM_REGISTRY_URL, ClickHouse server
 *   SWE_STREAM_CLICKHOUSE_URL (`source infra/env.sh`); each run uses fresh topics and groups (prefix
 *   `soak<ms>-clean.` / `soak<ms>-kill.`, SWE_STREAM_KAFKA_PREFIX) and a fresh database, removed at the end
 *   unless --keep.
 */
import { spawn, execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig } from '../cli/config.js';
import { openBus } from '../cli/bus.js';
import { readTopic } from '../streams/read.js';
import type { PullRequestEvent, StageOutcome } from '../schemas/types.gen.js';

const ROOT = resolve(import.meta.dirname, '..');
const HOUR = join(ROOT, 'test/fixtures/gharchive/2015-01-01-12.json.gz');
const { values: args } = parseArgs({
  options: {
    bus: { type: 'string', default: 'embedded,kafka' },
    kills: { type: 'string', default: '20' },
    hours: { type: 'string', default: '10' },
    keep: { type: 'boolean', default: false },
    'run-timeout-s': { type: 'string', default: '900' },
  },
});
const KILLS = Number(args.kills);
const HOURS = Number(args.hours);
const RUN_TIMEOUT_MS = Number(args['run-timeout-s']) * 1000;
const note = (msg: string) => process.stderr.write(`soak: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The hour files (see the header): hour 0 the real file, hours 1.. renumbered copies. Returns the glob. */
function makeHours(dir: string, hours: number): string {
  const raw = gunzipSync(readFileSync(HOUR));
  const lines = raw.toString('utf8').split('\n');
  const prLines = lines.map((l, i) => (l.includes('"PullRequestEvent"') ? i : -1)).filter((i) => i >= 0);
  let stride = 0;
  for (const i of prLines) {
    const e = JSON.parse(lines[i]!) as { type?: string; payload?: { number?: number } };
    const n = e.payload?.number;
    if (e.type === 'PullRequestEvent' && typeof n === 'number') stride = Math.max(stride, n + 1);
  }
  for (let r = 0; r < hours; r++) {
    const name = join(dir, `2015-01-01-${r}.json.gz`);
    if (r === 0) {
      symlinkSync(HOUR, name);
      continue;
    }
    const out = lines.slice();
    for (const i of prLines) {
      const e = JSON.parse(lines[i]!) as { type?: string; id?: string; payload?: { number?: number; pull_request?: { number?: number } } };
      if (e.type !== 'PullRequestEvent') continue;
      if (e.id) e.id = String(BigInt(e.id) + BigInt(r) * 10_000_000_000n);
      if (typeof e.payload?.number === 'number') e.payload.number += r * stride;
      if (typeof e.payload?.pull_request?.number === 'number') e.payload.pull_request.number += r * stride;
      out[i] = JSON.stringify(e);
    }
    writeFileSync(name, gzipSync(Buffer.from(out.join('\n'), 'utf8'), { level: 1 }));
  }
  return `${dir}/*.json.gz`;
}

interface Target {
  bus: 'embedded' | 'kafka';
  dataDir: string;
  configFile: string;
  env: NodeJS.ProcessEnv;
  prefix?: string;
  database?: string;
}

function target(bus: Target['bus'], base: string, name: string, stamp: string): Target {
  const dataDir = join(base, name);
  mkdirSync(dataDir, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, SWE_STREAM_OFFLINE: '1', SWE_STREAM_LOG_LEVEL: 'info', SWE_STREAM_BUS: bus };
  const cfg: Record<string, unknown> = {};
  let prefix: string | undefined;
  let database: string | undefined;
  if (bus === 'embedded') delete env.SWE_STREAM_CLICKHOUSE_URL; // chDB in the data directory
  else {
    prefix = `soak${stamp}-${name}.`;
    database = `soak_${stamp}_${name}`;
    env.SWE_STREAM_KAFKA_PREFIX = prefix;
    env.SWE_STREAM_REGISTRY_AUTO_REGISTER ??= '1'; // fresh prefixes, same subjects: register the schemas if this registry lacks them
    env.SWE_STREAM_CLICKHOUSE_URL ??= 'http://127.0.0.1:8123';
    cfg.clickhouse = { database };
  }
  const configFile = join(dataDir, 'soak-config.json');
  writeFileSync(configFile, JSON.stringify(cfg));
  return { bus, dataDir, configFile, env, prefix, database };
}

/** How one process ended: its exit code or the signal that ended it, its stderr's tail, when it was ready. */
interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
  /** ms from spawn to the first log line saying the pipeline is about to run ({@link READY}); undefined if none came */
  readyMs?: number;
}

/**
 * The log line after which a run processes records: embedded, chDB is open (the analytics endpoint is up);
 * Kafka, a consumer group was joined — after a SIGKILL the dead member holds its groups until its session
 * times out (30 s), and nothing moves before that.
 */
const READY = { embedded: 'analytics endpoint', kafka: 'group joined' } as const;

/**
 * Start `swe-stream run`; `plan` (optional) is handed the child, a promise of its {@link READY} line and one
 * of its exit, and decides when to kill it.
 */
function runCli(t: Target, source: string, plan?: (child: ReturnType<typeof spawn>, ready: Promise<void>, exited: Promise<unknown>) => void): Promise<RunResult> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [join(ROOT, 'bin/swe-stream.js'), 'run', '--stages', 'filter', '--until-idle', '--config', t.configFile, '--data-dir', t.dataDir, '--source', source], {
    cwd: ROOT, env: t.env, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  let readyMs: number | undefined;
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stderr!.on('data', (d: Buffer) => {
    const s = d.toString();
    if (readyMs === undefined && s.includes(READY[t.bus])) {
      readyMs = Date.now() - t0;
      onReady();
    }
    err = (err + s).slice(-20_000);
  });
  const exited = new Promise<RunResult>((res, rej) => {
    const guard = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', rej);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      res({ code, signal, stderr: err, ms: Date.now() - t0, readyMs });
    });
  });
  plan?.(child, ready, exited);
  return exited;
}

/** Errors and warnings of a run's JSON logs (the last few), for a run that ended by itself. */
function problems(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l && !/"level":(20|30)\b/.test(l)).slice(-6);
}

/** Multiset of identities, as id → copies. */
function counts(ids: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

interface Snapshot {
  topics: Record<string, Map<string, number>>;
  inputs: number;
  outcomes: number;
}

/** The topics a filter run writes, each record reduced to its identity. */
async function snapshot(t: Target): Promise<Snapshot> {
  const cfg = loadConfig({ file: t.configFile, env: t.env, overrides: { dataDir: t.dataDir } });
  const bus = await openBus(cfg);
  try {
    const events = await readTopic<PullRequestEvent>(bus.transport, bus.serde, 'pr.events');
    const outcomes = await readTopic<StageOutcome>(bus.transport, bus.serde, 'stage.outcomes');
    const keyed = async (topic: string) => {
      const offsets = await bus.transport.topicOffsets(topic).catch(() => []);
      const keys: string[] = [];
      for (const p of offsets) for (let from = BigInt(p.low); from < BigInt(p.high); ) {
        const recs = await bus.transport.read(topic, p.partition, from.toString(), 1000);
        if (!recs.length) break;
        for (const r of recs) keys.push(r.key ?? '');
        from = BigInt(recs[recs.length - 1]!.offset) + 1n;
      }
      return keys;
    };
    return {
      topics: {
        'pr.events': counts(events.map((e) => `${e.pr_id} ${e.source_event_id}`)),
        'stage.outcomes': counts(outcomes.map((o) => `${o.outcome_id} ${o.kind} ${o.reason ?? ''}`)),
        'pr.candidates': counts(await keyed('pr.candidates')),
        'pr.events.dlq': counts(await keyed('pr.events.dlq')),
      },
      inputs: events.length,
      outcomes: outcomes.length,
    };
  } finally {
    await bus.transport.close();
  }
}

/** lost / duplicated / replayed of `got` against `want` (see the header for Kafka's `duplicated`). */
function compare(want: Snapshot, got: Snapshot, atLeastOnce: boolean): { lost: number; duplicated: number; replayed: number; detail: string[] } {
  let lost = 0;
  let duplicated = 0;
  let replayed = 0;
  const detail: string[] = [];
  for (const [topic, w] of Object.entries(want.topics)) {
    const g = got.topics[topic]!;
    for (const [id, n] of w) {
      const m = g.get(id) ?? 0;
      if (m < n) {
        lost += n - m;
        if (detail.length < 10) detail.push(`lost ${topic} ${id} (${m} of ${n})`);
      }
      if (m > n) {
        if (atLeastOnce) replayed += m - n;
        else {
          duplicated += m - n;
          if (detail.length < 10) detail.push(`duplicated ${topic} ${id} (${m} for ${n})`);
        }
      }
    }
    for (const [id, m] of g) if (!w.has(id)) {
      duplicated += m;
      if (detail.length < 10) detail.push(`unexpected ${topic} ${id} ×${m}`);
    }
  }
  return { lost, duplicated, replayed, detail };
}

/** `stage_outcomes FINAL` of a target through `swe-stream query`: row count and the (id, kind, reason) set. */
async function clickhouse(t: Target): Promise<{ rows: number; ids: Set<string> }> {
  const q = async (sql: string) => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'bin/swe-stream.js'), 'query', '--json', '--config', t.configFile, '--data-dir', t.dataDir, sql], {
      cwd: ROOT, env: { ...t.env, SWE_STREAM_LOG_LEVEL: 'error' }, maxBuffer: 256 * 2 ** 20,
    });
    return JSON.parse(stdout) as Array<Record<string, unknown>>;
  };
  const rows = Number((await q('SELECT count() AS n FROM stage_outcomes FINAL'))[0]!.n);
  const ids = new Set((await q('SELECT outcome_id, kind, reason FROM stage_outcomes FINAL')).map((r) => `${r.outcome_id} ${r.kind} ${r.reason ?? ''}`));
  return { rows, ids };
}

/**
 * A reader of the records committed so far by the filter's and the sink's consumer groups (summed over
 * partitions), on one bus connection kept open for the whole soak (a failed read, e.g. while the broker
 * restarts, answers the last figure).
 */
async function committedReader(t: Target): Promise<(() => Promise<number>) & { close(): Promise<void> }> {
  const cfg = loadConfig({ file: t.configFile, env: t.env, overrides: { dataDir: t.dataDir } });
  const bus = await openBus(cfg);
  await bus.transport.ensureTopics(['pr.events', 'stage.outcomes'].map((name) => ({ name, partitions: cfg.partitions })));
  let last = 0;
  const sum = async (group: string, topic: string) => (await bus.transport.groupOffsets(group, [topic])).reduce((n, r) => n + Number(r.offset), 0);
  const read = async () => {
    try {
      last = (await sum('swe-stream.filter', 'pr.events')) + (await sum('swe-stream.sink', 'stage.outcomes'));
    } catch {
      // keep the last figure
    }
    return last;
  };
  return Object.assign(read, { close: () => bus.transport.close() });
}

/** `infra/kafka.sh stop|start` on the shared state folder (SWE_STREAM_STATE). */
async function kafkaCtl(cmd: 'stop' | 'start'): Promise<void> {
  await promisify(execFile)('bash', [join(ROOT, 'infra/kafka.sh'), cmd], { cwd: ROOT, env: process.env, timeout: 300_000 });
}

/** Remove a Kafka target's topics and groups and its ClickHouse database. */
async function dropKafkaTarget(t: Target): Promise<void> {
  const admin = new Kafka({ brokers: (process.env.SWE_STREAM_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','), clientId: 'swe-stream-soak', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((n) => n.startsWith(t.prefix!) || n.startsWith(`store.${t.prefix!}`));
    if (topics.length) await admin.deleteTopics({ topics, timeout: 30_000 });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(t.prefix!));
    if (groups.length) await admin.deleteGroups(groups).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
  await fetch(`${t.env.SWE_STREAM_CLICKHOUSE_URL}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${t.database}`)}`, { method: 'POST' });
}

async function soak(bus: Target['bus'], source: string, base: string): Promise<boolean> {
  const stamp = String(Date.now());
  const clean = target(bus, base, 'clean', stamp);
  const killed = target(bus, base, 'kill', stamp);
  const c = await runCli(clean, source);
  if (c.code !== 0) throw new Error(`clean ${bus} run exited ${c.code ?? c.signal}: ${problems(c.stderr).join('\n')}`);
  note(`${bus}: clean run ${(c.ms / 1000).toFixed(1)} s`);
  const want = await snapshot(clean);
  const total = want.inputs + want.outcomes; // records the filter and the sink commit in all
  const poll = await committedReader(killed);
  const t0 = Date.now();
  // Kill points: one in five at a random moment of start-up (spawn to ready); the others once the filter and
  // the sink together have committed a random number more records (up to half an even share of what is left
  // among the kills still to come and the last run: commits come in bursts of hundreds) or a random time after ready (up to 1.5 × the clean run's
  // time from ready to exit: commits come in bursts, the first one a while after ready), whichever comes
  // first: the kills land mid-work, and the last run has work left to finish.
  const startup = c.readyMs ?? 0;
  let kills = 0;
  let restarts = -1;
  let brokerRestarts = 0;
  let brokerDone = bus !== 'kafka';
  const crashes: string[] = [];
  /** committed records (filter + sink) before and at each kill */
  const at: Array<{ before: number; after: number }> = [];
  const brokerAt = bus === 'kafka' ? Math.floor(KILLS / 2) : -1;
  /** Wait until `n` records are committed, the child exits, or nothing moves for a minute. */
  const until = async (n: number, exited: Promise<unknown>, alive: () => boolean) => {
    let last = -1;
    let lastMove = Date.now();
    while (alive() && Date.now() - lastMove < 60_000) {
      const now = await poll();
      if (now >= n) return;
      if (now !== last) [last, lastMove] = [now, Date.now()];
      await Promise.race([sleep(bus === 'kafka' ? 100 : 10), exited]);
    }
  };
  for (;;) {
    restarts++;
    const killNow = kills < KILLS;
    const withBroker = killNow && kills >= brokerAt && !brokerDone;
    if (withBroker) brokerDone = true; // once, even when the worker dies under it
    const before = await poll();
    const left = Math.max(1, KILLS - kills) + 1; // this kill, the ones after it, and the run that finishes
    const share = Math.max(0, total - before) / (2 * left);
    const working = Math.max(300, c.ms - startup); // the clean run's time from ready to exit
    const r = await runCli(killed, source, killNow ? (child, ready, exited) => {
      void (async () => {
        const alive = () => child.exitCode === null && child.signalCode === null;
        // Everything committed already (a kill landed after the last commit): only start-up and the idle check are left to kill.
        if (!withBroker && before >= total) await Promise.race([sleep(Math.random() * 1.2 * Math.max(startup, 1000)), exited]);
        else if (!withBroker && startup > 0 && Math.random() < 0.2) await Promise.race([sleep(Math.random() * startup), exited]);
        else {
          await Promise.race([ready, sleep(Math.max(60_000, 3 * startup)), exited]);
          await Promise.race([until(before + 1 + Math.random() * share, exited, alive), sleep(Math.random() * 1.5 * working)]);
          if (withBroker && alive()) {
            note(`kafka: restarting the broker under worker ${child.pid} (${await poll()} of ${total} committed)`);
            await kafkaCtl('stop');
            await sleep(3000);
            await kafkaCtl('start');
            brokerRestarts++;
            note(`kafka: broker back (${await poll()} committed); letting the worker go on`);
            const back = await poll();
            await Promise.race([until(back + 1 + Math.random() * share, exited, alive), sleep(15_000 + Math.random() * 1.5 * working)]);
          }
        }
        if (alive()) child.kill('SIGKILL');
      })();
    } : undefined);
    if (r.signal === 'SIGKILL' && killNow) {
      kills++;
      at.push({ before, after: await poll() });
      if (process.env.SOAK_DEBUG) note(`kill ${kills} after ${r.ms} ms (ready ${r.readyMs}): ${JSON.stringify(at[at.length - 1])} of ${total}`);
      continue;
    }
    if (r.code === 0) break;
    crashes.push(`exit ${r.code ?? r.signal} after ${(r.ms / 1000).toFixed(1)} s: ${problems(r.stderr).join(' | ').slice(-1500)}`);
    note(`${bus}: run ${restarts} ended by itself: ${crashes[crashes.length - 1]}`);
    if (crashes.length > 10) throw new Error(`${bus}: more than 10 runs ended by themselves; giving up`);
  }
  const wall = (Date.now() - t0) / 1000;
  await poll.close();
  const got = await snapshot(killed);
  const cmp = compare(want, got, bus === 'kafka');
  // A kill "mid-work": the run it ended had moved the commits and left work for the next.
  const midWork = at.filter((k) => k.after > k.before && k.after < total).length;
  const chClean = await clickhouse(clean);
  const chKilled = await clickhouse(killed);
  const sameIds = chClean.ids.size === chKilled.ids.size && [...chClean.ids].every((id) => chKilled.ids.has(id));
  const equal = chClean.rows === chKilled.rows && sameIds && chClean.rows === want.topics['stage.outcomes']!.size;
  const ok = cmp.lost === 0 && cmp.duplicated === 0 && equal && kills >= KILLS;
  for (const d of cmp.detail) note(`${bus}: ${d}`);
  console.log(JSON.stringify({
    bench: 'soak', bus, hours: HOURS, kills, kills_mid_work: midWork, restarts, crashes: crashes.length, broker_restarts: brokerRestarts,
    inputs: got.inputs, outcomes: got.outcomes, clean_outcomes: want.outcomes, lost: cmp.lost, duplicated: cmp.duplicated, replayed: cmp.replayed,
    clickhouse_rows: chKilled.rows, clean_rows: chClean.rows, equal, wall_s: Math.round(wall), clean_s: Math.round(c.ms / 100) / 10, load1: +loadavg()[0]!.toFixed(1),
    ...(crashes.length ? { crash_causes: crashes } : {}),
  }));
  if (bus === 'kafka' && !args.keep) for (const t of [clean, killed]) await dropKafkaTarget(t).catch((e: Error) => note(`cleanup of ${t.prefix}: ${e.message}`));
  return ok;
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'soak-'));
  const inputDir = join(base, 'hours');
  mkdirSync(inputDir);
  const source = `gharchive:${makeHours(inputDir, HOURS)}`;
  let ok = true;
  try {
    for (const bus of args.bus.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (bus !== 'embedded' && bus !== 'kafka') throw new Error(`--bus: unknown bus ${bus}`);
      ok = (await soak(bus, source, join(base, bus))) && ok;
    }
  } finally {
    if (!args.keep) rmSync(base, { recursive: true, force: true });
    else note(`kept ${base}`);
  }
  process.exit(ok ? 0 : 1);
}

await main();
