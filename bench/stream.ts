/**
 * bench/stream — records/s through the stage runtime on each transport (issue 2).
 *
 * Replays the real GH Archive hour test/fixtures/gharchive/2015-01-01-12.json.gz (its 367
 * PullRequestEvent records, repeated with distinct PR numbers up to --records, default 1,000,000) through
 *   - `passthrough`: every record forwarded unchanged to an output topic, and
 *   - `merged-gate`: a trivial real stage, the filter's first rule (not merged → rejected, else forwarded),
 * on the embedded log and on Kafka (--transports embedded,kafka). Each run counts from the first record
 * admitted to the last input committed, including decode, encode, outputs, stage outcomes and commits.
 * On the embedded log it first measures the limit (stage `limit`, see runLimit): the same records only
 * Avro-encoded and inserted raw; each embedded stage line then gives its ratio to it (`of_limit` by wall
 * time, `of_limit_cpu` by CPU time).
 * Prints one JSON line per configuration:
 *   {"bench":"stream","transport":"embedded","stage":"passthrough","records":N,"seconds":S,"records_per_s":R,
 *    "cpu_s":C,"records_per_cpu_s":RC,"load1":L,"rss_mb":M,"elu":U,"of_limit":F,"of_limit_cpu":FC}
 * `cpu_s` is this process's user+system CPU over the same span (not the Kafka broker's), and `load1` the
 * 1-minute load average at the end: on a shared machine wall-clock figures swing with other jobs, CPU per
 * record much less, so compare runs by both. `elu` is the event loop's utilisation over the run: near 1 the
 * run is bound by CPU (its own or, on a loaded machine, its share of it); well below 1 it waits on something.
 * With BENCH_WINDOW=1 it also prints `window_us <start> <end>` (monotonic µs) on stderr, to cut a
 * `node --cpu-prof --import tsx bench/stream.ts` profile to the measured span.
 * Options: --records N, --transports a,b, --stages a,b, --no-limit (skip the limit), --window (per partition, default 4096),
 * --concurrency (default 64), --file (the GH Archive hour).
 * Targets (2 cores): embedded ≥ 50,000/s, Kafka ≥ 20,000/s, merged-gate ≥ 80 % of passthrough.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import { EmbeddedTransport, RECORDS_DDL } from '../streams/transports/embedded.js';
import { EmbeddedSerde } from '../streams/serde-embedded.js';
import { StageRuntime } from '../streams/runtime.js';
import { accept, reject } from '../streams/types.js';
import type { Stage } from '../streams/stage.js';
import type { Transport, ProduceRecord } from '../streams/transport.js';
import type { Serde } from '../streams/serde.js';
import type { PullRequestEvent } from '../schemas/types.gen.js';
import { openSource } from '../connectors/sources/index.js';
import { MirrorCache } from '../operators/pr/mirror.js';
import Database from 'better-sqlite3';
import { partitionFor } from '../streams/transport.js';
import { preloadEvents, committedTotal, repeater } from './common.js';
import { prCatalog } from '../operators/pr/topology.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    transports: { type: 'string', default: 'embedded,kafka' },
    stages: { type: 'string', default: 'passthrough,merged-gate' },
    'no-limit': { type: 'boolean', default: false },
    window: { type: 'string', default: '4096' },
    concurrency: { type: 'string', default: '64' },
    file: { type: 'string', default: join(import.meta.dirname, '../test/fixtures/gharchive/2015-01-01-12.json.gz') },
  },
});

const IN = 'bench.in';
const OUT = 'bench.out';
/** Outcomes go to a bench topic: the pipeline's stage.outcomes may hold a real run's records on the same broker. */
const OUTCOMES = 'bench.outcomes';
const catalog = prCatalog();
catalog.register(IN, 'PullRequestEvent');
catalog.register(OUT, 'PullRequestEvent');
catalog.register(OUTCOMES, 'StageOutcome');

/** The hour's PullRequestEvent records, through the real gharchive source. */
async function loadEvents(file: string): Promise<PullRequestEvent[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-src-'));
  const src = openSource(`gharchive:${file}`, { dataDir, mirrors: new MirrorCache({ dataDir }) });
  const out: PullRequestEvent[] = [];
  for await (const it of src.items({ signal: new AbortController().signal, follow: false })) if (it.kind === 'event') out.push(it.event);
  rmSync(dataDir, { recursive: true, force: true });
  return out;
}

const stages: Record<string, Stage<PullRequestEvent, PullRequestEvent>> = {
  // The stage name only labels outcomes and the consumer group; topics are overridden below.
  passthrough: { name: 'filter', handle: async (env) => accept(env.value) },
  'merged-gate': { name: 'filter', handle: async (env) => (env.value.merged ? accept(env.value, { repo: env.value.repo }) : reject('not-merged')) },
};

/** records_per_s and records_per_cpu_s of the raw limit, once measured (the stage lines print their ratio to it). */
let limit: { rps: number; rpcs: number } | undefined;

/**
 * The embedded limit (issue 15): the same records Avro-encoded (EmbeddedSerde) and inserted raw with
 * better-sqlite3 into a table laid out as the log's `records` (same pragmas), 32 rows per statement call,
 * 4,096 records per transaction — no read, decode, stage, outcome or commit. A stage's ratio to it says how
 * much the runtime adds to the floor cost of writing the records once.
 */
function runLimit(n: number): void {
  const dir = mkdtempSync(join(tmpdir(), 'bench-limit-'));
  const db = new Database(join(dir, 'limit.db'));
  db.pragma('page_size = 16384');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(RECORDS_DDL);
  const ROWS = 32;
  const many = db.prepare(`INSERT INTO records (topic, partition, offset, key, value, headers, ts) VALUES ${Array(ROWS).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ')}`);
  const one = db.prepare('INSERT INTO records (topic, partition, offset, key, value, headers, ts) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const serde = new EmbeddedSerde({ catalog });
  const nth = repeater(events, n);
  const heads = [0, 0, 0];
  let headersText: string | undefined;
  const start = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const tx = db.transaction((from: number, to: number) => {
    const now = Date.now();
    const row: unknown[] = [];
    for (let i = from; i < to; i++) {
      const ev = nth(i);
      const enc = serde.encodeSync(OUT, ev);
      headersText ??= JSON.stringify(enc.headers);
      const p = partitionFor(ev.pr_id, 3);
      row.push(OUT, p, heads[p]!++, ev.pr_id, enc.value, headersText, now);
      if (row.length === ROWS * 7) {
        many.run(row);
        row.length = 0;
      }
    }
    for (let i = 0; i < row.length; i += 7) one.run(row.slice(i, i + 7));
  });
  for (let i = 0; i < n; i += 4096) tx.immediate(i, Math.min(n, i + 4096));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  db.close();
  rmSync(dir, { recursive: true, force: true });
  limit = { rps: n / seconds, rpcs: n / cpuSeconds };
  console.log(JSON.stringify({ bench: 'stream', transport: 'embedded', stage: 'limit', records: n, seconds: +seconds.toFixed(3), records_per_s: Math.round(n / seconds), cpu_s: +cpuSeconds.toFixed(3), records_per_cpu_s: Math.round(n / cpuSeconds), load1: +loadavg()[0]!.toFixed(1) }));
}

async function runOne(t: Transport, serde: Serde, stageName: string, n: number, transport: string): Promise<void> {
  const group = `bench.${stageName}.${Date.now()}`;
  const rt = new StageRuntime({ stage: stages[stageName]!, transport: t, serde, concurrency: Number(args.concurrency), window: Number(args.window), groupId: group, topics: { input: IN, output: OUT, outcomes: OUTCOMES } });
  const start = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  await rt.start();
  for (;;) {
    if ((await committedTotal(t, group, IN)) >= BigInt(n)) break;
    if (rt.error) throw rt.error;
    await new Promise((r) => setTimeout(r, 50));
  }
  const end = process.hrtime.bigint();
  if (process.env.BENCH_WINDOW) console.error(`window_us ${start / 1000n} ${end / 1000n}`);
  const seconds = Number(end - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const elu = performance.eventLoopUtilization(elu0).utilization;
  await rt.stop();
  const mem = process.memoryUsage();
  console.log(JSON.stringify({ bench: 'stream', transport, stage: stageName, records: n, seconds: +seconds.toFixed(3), records_per_s: Math.round(n / seconds), cpu_s: +cpuSeconds.toFixed(3), records_per_cpu_s: Math.round(n / cpuSeconds), load1: +loadavg()[0]!.toFixed(1), rss_mb: Math.round(mem.rss / 2 ** 20), elu: +elu.toFixed(2), ...(transport === 'embedded' && limit ? { of_limit: +(n / seconds / limit.rps).toFixed(2), of_limit_cpu: +(n / cpuSeconds / limit.rpcs).toFixed(2) } : {}) }));
}

async function openTransport(kind: string, dir: string): Promise<{ t: Transport; serde: Serde }> {
  if (kind === 'embedded') return { t: new EmbeddedTransport({ path: join(dir, 'log.db') }), serde: new EmbeddedSerde({ catalog }) };
  const { openKafkaBench } = await import('./kafka-setup.js');
  return openKafkaBench([IN, OUT, OUTCOMES], catalog);
}

const events = await loadEvents(args.file!);
if (events.length === 0) throw new Error(`no PullRequestEvent records in ${args.file}`);
const n = Number(args.records);
if (!args['no-limit'] && args.transports!.split(',').includes('embedded')) runLimit(n);
for (const kind of args.transports!.split(',')) {
  for (const stageName of args.stages!.split(',')) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-stream-'));
    const { t, serde } = await openTransport(kind, dir);
    const topics = [IN, OUT, `${IN}.retry.filter`, `${IN}.dlq`, OUTCOMES];
    await t.ensureTopics(topics.map((name) => ({ name, partitions: 3 })));
    await preloadEvents(t, serde, IN, events, n);
    await runOne(t, serde, stageName, n, kind);
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
