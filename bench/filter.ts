/**
 * bench/filter — records/s of the real filter stage (operators/filter.ts) fed from the real GH Archive
 * source (issue 3).
 *
 * Input: test/fixtures/gharchive/2015-01-01-12.json.gz through the `gharchive:` source (its 367
 * PullRequestEvent records, repeated with distinct PR numbers up to --records, default 200,000). The
 * filter runs with the mirror cache's network off, so the path measured is the merged-rule path: 217 of
 * every 367 records end `not-merged`, the merged ones pass the bot/licence rules and end
 * `repo-unavailable` without a clone (no repository is reachable offline). Configurations:
 *   - `source`:   the GH Archive scan alone (issue 15 item 2): the real hour repeated as --scan-files hour
 *     files (default 121, 1,001,033 lines, 2.2 GB decompressed) read by the `gharchive:` source on one
 *     thread and on worker threads up to the cores available, printing lines/s, MB/s of decompressed
 *     input, and lines per CPU-second (the per-core figure, robust to a busy machine), beside the anchor
 *     `gzip -dc | grep -c PullRequestEvent` on the same file (`transport":"anchor"`);
 *   - `direct`:   the filter's handle() called in a loop, no transport (the stage's own cost);
 *   - `embedded` / `kafka`: through the stage runtime (streams/runtime.ts) on that transport, counted
 *     from start to the last input committed, including decode, outcomes and commits. Each run uses
 *     fresh topics `bench.filter.<ms>.in/.out` (Kafka: broker SWE_STREAM_KAFKA_BROKERS, registry
 *     SWE_STREAM_REGISTRY_URL, schemas auto-registered) and deletes only those afterwards; a transport
 *     that cannot be reached prints `{"skipped": …}` instead of a figure.
 * One JSON line per configuration:
 *   {"bench":"filter","transport":"embedded","records":N,"seconds":S,"records_per_s":R,"outcomes":{…}}
 *   {"bench":"filter","transport":"source","threads":T,"files":F,"lines":L,"mb":M,"seconds":S,"lines_per_s":…,"mb_per_s":…,"cpu_s":…,"lines_per_cpu_s":…,"records":R,"load1":…}
 * Usage: npx tsx bench/filter.ts [--records N] [--transports source,direct,embedded,kafka] [--file F] [--scan-files N]
 */
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaTransport, defaultBrokers } from '../streams/transports/kafka.js';
import { RegistrySerde, defaultRegistryUrl } from '../streams/serde-registry.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddedTransport } from '../streams/transports/embedded.js';
import { EmbeddedSerde } from '../streams/serde-embedded.js';
import { StageRuntime } from '../streams/runtime.js';
import type { Transport, ProduceRecord } from '../streams/transport.js';
import type { Serde } from '../streams/serde.js';
import type { Envelope } from '../streams/types.js';
import type { PullRequestEvent } from '../schemas/types.gen.js';
import { openSource, GhArchiveSource } from '../connectors/sources/index.js';
import { MirrorCache } from '../operators/pr/mirror.js';
import { filterStage, PATCH_SEEN_STORE } from '../operators/filter.js';
import { preloadEvents, committedTotal, repeater } from './common.js';
import { prCatalog } from '../operators/pr/topology.js';
import type { TopicCatalog } from '../streams/topics.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    transports: { type: 'string', default: 'source,direct,embedded,kafka' },
    file: { type: 'string', default: join(import.meta.dirname, '../test/fixtures/gharchive/2015-01-01-12.json.gz') },
    'scan-files': { type: 'string', default: '121' },
  },
});

const emit = (o: Record<string, unknown>) => console.log(JSON.stringify({ bench: 'filter', ...o }));

/** The file's PullRequestEvent records through the real source. */
async function loadEvents(file: string): Promise<PullRequestEvent[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-filter-src-'));
  const src = openSource(`gharchive:${file}`, { dataDir, mirrors: new MirrorCache({ dataDir, network: false }) });
  const out: PullRequestEvent[] = [];
  for await (const it of src.items({ signal: new AbortController().signal, follow: false })) if (it.kind === 'event') out.push(it.event);
  rmSync(dataDir, { recursive: true, force: true });
  return out;
}

/**
 * The scan figure: `files` copies of the hour (symlinks named as consecutive hours) through the source,
 * once on one thread and once on worker threads up to the cores available.
 */
async function runScan(file: string, files: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-filter-scan-'));
  const hour0 = Date.UTC(2015, 0, 1);
  for (let i = 0; i < files; i++) {
    const d = new Date(hour0 + i * 3_600_000);
    symlinkSync(file, join(dir, `${d.toISOString().slice(0, 10)}-${d.getUTCHours()}.json.gz`));
  }
  const raw = gunzipSync(readFileSync(file));
  const mb = (raw.length * files) / 1e6;
  const cores = availableParallelism();
  for (const threads of [...new Set([1, cores])]) {
    const src = new GhArchiveSource(`gharchive:${dir}/*.json.gz`, `${dir}/*.json.gz`, { threads });
    let lines = 0;
    let records = 0;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for await (const it of src.items({ signal: new AbortController().signal, follow: false })) {
      lines += it.kind === 'skipped' ? (it.count ?? 1) : 1;
      if (it.kind === 'event') records++;
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(cpu0);
    const cpu = (c.user + c.system) / 1e6; // all threads of this process
    emit({ transport: 'source', threads, files, lines, mb: Math.round(mb), seconds: +seconds.toFixed(2), lines_per_s: Math.round(lines / seconds), mb_per_s: Math.round(mb / seconds), cpu_s: +cpu.toFixed(2), lines_per_cpu_s: Math.round(lines / cpu), records, load1: +loadavg()[0]!.toFixed(1) });
  }
  rmSync(dir, { recursive: true, force: true });
  // The anchor of issue 15: decompress and grep the same file (5 times), CPU of the children from bash's `times`.
  const reps = 5;
  const t0 = process.hrtime.bigint();
  const out = execFileSync('bash', ['-c', `for i in $(seq ${reps}); do gzip -dc "$1" | grep -c PullRequestEvent >/dev/null; done; times`, 'anchor', file], { encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const [u, sy] = (out.trim().split('\n')[1] ?? '').split(/\s+/).map((x) => { const m = /(\d+)m([\d.]+)s/.exec(x); return m ? Number(m[1]) * 60 + Number(m[2]) : NaN; });
  const lines = raw.toString('latin1').split('\n').filter(Boolean).length * reps;
  emit({ transport: 'anchor', tool: 'gzip -dc | grep -c PullRequestEvent', lines, mb: Math.round((raw.length * reps) / 1e6), seconds: +seconds.toFixed(2), lines_per_s: Math.round(lines / seconds), mb_per_s: Math.round((raw.length * reps) / 1e6 / seconds), cpu_s: +(u! + sy!).toFixed(2), lines_per_cpu_s: Math.round(lines / (u! + sy!)), load1: +loadavg()[0]!.toFixed(1) });
}

async function runDirect(events: PullRequestEvent[], n: number): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-filter-'));
  const log = new EmbeddedTransport({ path: join(dataDir, 'log.db') });
  const stage = filterStage({ mirrors: new MirrorCache({ dataDir, network: false }), seen: await log.openStore(PATCH_SEEN_STORE) });
  const outcomes: Record<string, number> = {};
  const signal = new AbortController().signal;
  const nth = repeater(events, n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const ev = nth(i);
    const env: Envelope<PullRequestEvent> = { key: ev.pr_id, value: ev, origin: { topic: 'pr.events', partition: 0, offset: String(i) }, attempt: 1, signal };
    const o = await stage.handle(env);
    const k = o.kind === 'rejected' ? o.reason : o.kind;
    outcomes[k] = (outcomes[k] ?? 0) + 1;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await log.close();
  rmSync(dataDir, { recursive: true, force: true });
  emit({ transport: 'direct', records: n, seconds: +s.toFixed(3), records_per_s: Math.round(n / s), outcomes });
}

/** Topics of one run: fresh names, so a shared broker's pipeline topics are never touched or deleted. */
function runTopics(): { input: string; output: string; all: string[]; catalog: TopicCatalog } {
  const base = `bench.filter.${Date.now()}`;
  const input = `${base}.in`;
  const output = `${base}.out`;
  const catalog = prCatalog();
  catalog.register(input, 'PullRequestEvent');
  catalog.register(output, 'PrCandidate');
  return { input, output, all: [input, output, `${input}.retry.filter`, `${input}.dlq`, 'stage.outcomes'], catalog };
}

async function runTransport(kind: string, events: PullRequestEvent[], n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-filter-rt-'));
  const topics = runTopics();
  let t: Transport;
  let serde: Serde;
  if (kind === 'embedded') {
    t = new EmbeddedTransport({ path: join(dir, 'log.db') });
    serde = new EmbeddedSerde({ catalog: topics.catalog });
  } else if (kind === 'kafka') {
    // Not bench/kafka-setup.ts: it deletes shared topics (stage.outcomes) that other runs on the broker may be using.
    t = new KafkaTransport();
    serde = new RegistrySerde({ url: defaultRegistryUrl(), autoRegisterSchemas: true, catalog: topics.catalog });
  } else throw new Error(`unknown transport ${kind}`);
  try {
    await t.ensureTopics(topics.all.map((name) => ({ name, partitions: 3 })));
    await preloadEvents(t, serde, topics.input, events, n);
  } catch (err) {
    emit({ transport: kind, skipped: `transport unavailable: ${(err as Error).message}` });
    await t.close().catch(() => undefined);
    return;
  }
  const stage = filterStage({ mirrors: new MirrorCache({ dataDir: dir, network: false }), seen: await t.openStore(PATCH_SEEN_STORE) });
  const outcomes: Record<string, number> = {};
  const group = `bench.filter.${Date.now()}`;
  const rt = new StageRuntime({
    stage, transport: t, serde, concurrency: 64, window: 4096, groupId: group, topics: { input: topics.input, output: topics.output, outcomes: 'stage.outcomes' },
    observer: { outcome: (_s, k, reason) => { const key = reason ?? k; outcomes[key] = (outcomes[key] ?? 0) + 1; } },
  });
  const start = process.hrtime.bigint();
  await rt.start();
  for (;;) {
    if ((await committedTotal(t, group, topics.input)) >= BigInt(n)) break;
    if (rt.error) throw rt.error;
    // Polling the committed offsets is how this bench observes progress; it does not synchronise the stage.
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await rt.stop();
  await stage.close?.();
  if (kind === 'kafka') await deleteKafkaTopics(topics.all.filter((x) => x !== 'stage.outcomes'));
  await t.close();
  rmSync(dir, { recursive: true, force: true });
  emit({ transport: kind, records: n, seconds: +seconds.toFixed(3), records_per_s: Math.round(n / seconds), rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), outcomes });
}

/** Remove this run's own topics from the broker (never shared ones). */
async function deleteKafkaTopics(names: string[]): Promise<void> {
  const admin = new Kafka({ brokers: defaultBrokers(), clientId: 'swe-stream-bench-filter', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const mine = names.filter((n) => existing.has(n));
    if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 30_000 });
  } finally {
    await admin.disconnect();
  }
}

if (args.transports!.split(',').includes('source')) await runScan(args.file!, Number(args['scan-files']));
const events = await loadEvents(args.file!);
if (events.length === 0) throw new Error(`no PullRequestEvent records in ${args.file}`);
const n = Number(args.records);
for (const kind of args.transports!.split(',')) {
  if (kind === 'source') continue;
  if (kind === 'direct') await runDirect(events, n);
  else await runTransport(kind, events, n);
}
