/**
 * Prometheus metrics of a live run (prom-client) and the HTTP endpoint that serves them
 * (`--metrics-port`). The stage runtime increments these objects; the terminal progress display
 * (cli/progress.ts) reads them back through {@link stageSnapshot}, so both views show the same numbers.
 *
 * Naming follows the Prometheus conventions (https://prometheus.io/docs/practices/naming/): a
 * `swe_stream_` prefix, `_total` on counters, base units (seconds) on histograms. Labels are bounded:
 * `stage` is one of the six stage names, `kind` accepted|rejected|failed, `reason` a stage's reason code.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { logger } from './log.js';

const log = logger({ component: 'metrics' });

/** The registry every swe-stream metric is registered in (not prom-client's global one, so tests stay isolated). */
export const registry = new Registry();

/** Records taken into a stage from its input topic (including retries), by stage. */
export const recordsIn = new Counter({ name: 'swe_stream_records_in_total', help: 'Records admitted into a stage', labelNames: ['stage'] as const, registers: [registry] });
/** Stage outcomes by stage and kind (accepted | rejected | failed); `reason` is the rejection reason or the error class, '' for accepted. */
export const outcomes = new Counter({ name: 'swe_stream_outcomes_total', help: 'Stage outcomes by kind', labelNames: ['stage', 'kind', 'reason'] as const, registers: [registry] });
/** Records currently being processed by a stage (admitted, no outcome yet). */
export const inFlight = new Gauge({ name: 'swe_stream_in_flight', help: 'Records in flight per stage', labelNames: ['stage'] as const, registers: [registry] });
/** Consumer lag of a stage's input: end offset minus committed offset, summed over partitions, in records. */
export const lag = new Gauge({ name: 'swe_stream_lag_records', help: 'Input lag per stage (records)', labelNames: ['stage'] as const, registers: [registry] });
/** Records sent to a stage's due-time retry topic. */
export const retries = new Counter({ name: 'swe_stream_retries_total', help: 'Records scheduled for retry', labelNames: ['stage'] as const, registers: [registry] });
/** Records sent to a dead-letter topic, by stage and DeadLetter reason (decode-error | max-attempts | not-retriable). */
export const deadLetters = new Counter({ name: 'swe_stream_dlq_total', help: 'Records dead-lettered', labelNames: ['stage', 'reason'] as const, registers: [registry] });
/** Wall time of one record in a stage, seconds (buckets 10 ms … 30 min: rule stages are ms, sandbox stages minutes). */
export const stageDuration = new Histogram({
  name: 'swe_stream_stage_duration_seconds', help: 'Per-record stage wall time', labelNames: ['stage', 'kind'] as const,
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800], registers: [registry],
});
/** Rows written by the ClickHouse sink, by table. */
export const sinkRows = new Counter({ name: 'swe_stream_sink_rows_total', help: 'Rows inserted by the ClickHouse sink', labelNames: ['table'] as const, registers: [registry] });
/** Insert attempts of the ClickHouse sink that failed and were retried with the same dedup token. */
export const sinkRetries = new Counter({ name: 'swe_stream_sink_retries_total', help: 'ClickHouse insert retries', labelNames: ['table'] as const, registers: [registry] });
/** Records refused by the sink because they did not match their Avro schema. */
export const sinkInvalid = new Counter({ name: 'swe_stream_sink_invalid_total', help: 'Records refused by the sink (schema mismatch)', labelNames: ['topic'] as const, registers: [registry] });
/** Rows buffered or pending in the sink, not yet durable. */
export const sinkPending = new Gauge({ name: 'swe_stream_sink_pending_rows', help: 'Rows not yet durable in ClickHouse', registers: [registry] });

let defaultsOn = false;
/** Add Node process metrics (CPU, memory, event loop lag) to {@link registry}. Idempotent. */
export function enableProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: registry, prefix: 'swe_stream_' });
}

/** Convenience for the runtime: one call per outcome updates the outcome counter and the duration histogram. */
export function recordOutcome(stage: string, kind: 'accepted' | 'rejected' | 'failed', durationMs: number, reason = ''): void {
  outcomes.inc({ stage, kind, reason: kind === 'accepted' ? '' : reason });
  stageDuration.observe({ stage, kind }, Math.max(0, durationMs) / 1000);
}

/** Per-stage figures read back from the registry (for the progress display). Counts are records. */
export interface StageSnapshot {
  stage: string;
  in: number;
  accepted: number;
  rejected: number;
  failed: number;
  inFlight: number;
  lag: number;
  retries: number;
  dlq: number;
}

/**
 * Current per-stage values, one entry per stage seen in any metric, in first-seen order unless `stages` orders them.
 * Reads prom-client's in-memory values (no HTTP).
 */
export async function stageSnapshot(stages: readonly string[] = []): Promise<StageSnapshot[]> {
  const by = new Map<string, StageSnapshot>();
  const get = (stage: string): StageSnapshot => {
    let s = by.get(stage);
    if (!s) { s = { stage, in: 0, accepted: 0, rejected: 0, failed: 0, inFlight: 0, lag: 0, retries: 0, dlq: 0 }; by.set(stage, s); }
    return s;
  };
  for (const st of stages) get(st);
  for (const v of (await recordsIn.get()).values) get(String(v.labels.stage)).in += v.value;
  for (const v of (await outcomes.get()).values) {
    const s = get(String(v.labels.stage));
    const k = v.labels.kind;
    if (k === 'accepted' || k === 'rejected' || k === 'failed') s[k] += v.value;
  }
  for (const v of (await inFlight.get()).values) get(String(v.labels.stage)).inFlight = v.value;
  for (const v of (await lag.get()).values) get(String(v.labels.stage)).lag = v.value;
  for (const v of (await retries.get()).values) get(String(v.labels.stage)).retries += v.value;
  for (const v of (await deadLetters.get()).values) get(String(v.labels.stage)).dlq += v.value;
  return [...by.values()];
}

/** A running /metrics endpoint. */
export interface MetricsServer {
  /** The port actually bound (useful when 0 was asked for). */
  port: number;
  close(): Promise<void>;
}

/**
 * Serve {@link registry} at `GET /metrics` (Prometheus text format 0.0.4) on 127.0.0.1 unless `host` says otherwise.
 * Other paths → 404. @param port TCP port, 0 = any free one.
 * @throws Error (retriable = false) when the port cannot be bound (EADDRINUSE, EACCES)
 */
export async function startMetricsServer(port: number, host = '127.0.0.1'): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      registry.metrics().then(
        (body) => { res.writeHead(200, { 'content-type': registry.contentType }); res.end(body); },
        (err: unknown) => { log.error({ err: String(err) }, 'metrics collection failed'); res.writeHead(500); res.end(String(err)); },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: try /metrics\n');
  });
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', (err) => rejectListen(Object.assign(new Error(`metrics server cannot listen on ${host}:${port}: ${err.message}`, { cause: err }), { retriable: false })));
    server.listen(port, host, () => resolveListen());
  });
  const bound = (server.address() as AddressInfo).port;
  log.info({ port: bound }, 'metrics endpoint at /metrics');
  return {
    port: bound,
    close: () => new Promise<void>((res, rej) => server.close((err) => (err ? rej(err) : res()))),
  };
}
