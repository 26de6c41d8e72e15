/**
 * bench/filter — records/s of the real filter stage (operators/filter.ts) fed from the real GH Archive
 * source (issue 3).
 *
 * Input: test/fixtures/gharchive/2015-01-01-12.json.gz through the `gharchive:` source (its 367
 * PullRequestEvent records, repeated with distinct PR numbers up to --records, default 200,000). The
 * filter runs with the mirror cache's network off, so the path measured is the merged-rule path: 217 of
 * every 367 records end `not-merged`, the merged ones pass the bot/licence rules and end
 * `repo-unavailable` without a clone (no repository is reachable offline). Configurations:
 *   - `source`:   GH Archive decode only (gunzip + JSON + normalisation), events/s and lines/s;
 *   - `direct`:   the filter's handle() called in a loop, no transport (the stage's own cost);
 *   - `embedded` / `kafka`: through the stage runtime (streams/runtime.ts) on that transport, counted
 *     from start to the last input committed, including decode, outcomes and commits. Each run uses
 *     fresh topics `bench.filter.<ms>.in/.out` (Kafka: broker SWE_STREAM_KAFKA_BROKERS, registry
 *     SWE_STREAM_REGISTRY_URL, schemas auto-registered) and deletes only those afterwards; a transport
 *     that cannot be reached prints `{"skipped": …}` instead of a figure.
 * One JSON line per configuration:
 *   {"bench":"filter","transport":"embedded","records":N,"seconds":S,"records_per_s":R,"outcomes":{…}}
 * Usage: npx tsx bench/filter.ts [--records N] [--transports direct,embedded,kafka] [--file F]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaTransport, defaultBrokers } from '../streams/transports/kafka.js';
import { RegistrySerde, defaultRegistryUrl } from '../streams/serde-registry.js';
import { registerTopic } from '../streams/topics.js';
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
import { openSource } from '../connectors/sources/index.js';
import { MirrorCache } from '../operators/pr/mirror.js';
import { filterStage } from '../operators/filter.js';
import { preloadEvents, committedTotal, repeater } from './common.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    transports: { type: 'string', default: 'source,direct,embedded,kafka' },
    file: { type: 'string', default: join(import.meta.dirname, '../test/fixtures/gharchive/2015-01-01-12.json.gz') },
  },
});

const emit = (o: Record<string, unknown>) => console.log(JSON.stringify({ bench: 'filter', ...o }));

/** The file's PullRequestEvent records through the real source; also times the source itself. */
async function loadEvents(file: string): Promise<PullRequestEvent[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-filter-src-'));
  const src = openSource(`gharchive:${file}`, { dataDir, mirrors: new MirrorCache({ dataDir, network: false }) });
  const out: PullRequestEvent[] = [];
  let lines = 0;
  const t0 = process.hrtime.bigint();
  for await (const it of src.items({ signal: new AbortController().signal, follow: false })) {
    lines++;
    if (it.kind === 'event') out.push(it.event);
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  rmSync(dataDir, { recursive: true, force: true });
  if (args.transports!.split(',').includes('source')) emit({ transport: 'source', records: out.length, lines, seconds: +s.toFixed(3), records_per_s: Math.round(out.length / s), lines_per_s: Math.round(lines / s) });
  return out;
}

async function runDirect(events: PullRequestEvent[], n: number): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-filter-'));
  const stage = filterStage({ mirrors: new MirrorCache({ dataDir, network: false }), dataDir });
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
  await stage.close?.();
  rmSync(dataDir, { recursive: true, force: true });
  emit({ transport: 'direct', records: n, seconds: +s.toFixed(3), records_per_s: Math.round(n / s), outcomes });
}

/** Topics of one run: fresh names, so a shared broker's pipeline topics are never touched or deleted. */
function runTopics(): { input: string; output: string; all: string[] } {
  const base = `bench.filter.${Date.now()}`;
  const input = `${base}.in`;
  const output = `${base}.out`;
  registerTopic(input, 'PullRequestEvent');
  registerTopic(output, 'PrCandidate');
  return { input, output, all: [input, output, `${input}.retry.filter`, `${input}.dlq`, 'stage.outcomes'] };
}

async function runTransport(kind: string, events: PullRequestEvent[], n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-filter-rt-'));
  const topics = runTopics();
  let t: Transport;
  let serde: Serde;
  if (kind === 'embedded') {
    t = new EmbeddedTransport({ path: join(dir, 'log.db') });
    serde = new EmbeddedSerde();
  } else if (kind === 'kafka') {
    // Not bench/kafka-setup.ts: it deletes shared topics (stage.outcomes) that other runs on the broker may be using.
    t = new KafkaTransport({ stateFile: join(dir, 'kafka-state.json') });
    serde = new RegistrySerde({ url: defaultRegistryUrl(), autoRegisterSchemas: true });
  } else throw new Error(`unknown transport ${kind}`);
  try {
    await t.ensureTopics(topics.all.map((name) => ({ name, partitions: 3 })));
    await preloadEvents(t, serde, topics.input, events, n);
  } catch (err) {
    emit({ transport: kind, skipped: `transport unavailable: ${(err as Error).message}` });
    await t.close().catch(() => undefined);
    return;
  }
  const stage = filterStage({ mirrors: new MirrorCache({ dataDir: dir, network: false }), dataDir: dir });
  const outcomes: Record<string, number> = {};
  const group = `bench.filter.${Date.now()}`;
  const rt = new StageRuntime({
    stage, transport: t, serde, concurrency: 64, window: 4096, groupId: group, topics: { input: topics.input, output: topics.output },
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

const events = await loadEvents(args.file!);
if (events.length === 0) throw new Error(`no PullRequestEvent records in ${args.file}`);
const n = Number(args.records);
for (const kind of args.transports!.split(',')) {
  if (kind === 'source') continue;
  if (kind === 'direct') await runDirect(events, n);
  else await runTransport(kind, events, n);
}
