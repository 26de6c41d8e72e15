/**
 * What a running job shows: Prometheus metrics (always recorded; served when --metrics-port is set), a live
 * per-stage progress display on a terminal, and nothing but JSON logs otherwise.
 */
import type { Config } from './config.js';
import type { Pipeline } from '../streams/pipeline.js';
import type { RuntimeObserver } from '../streams/runtime.js';
import * as m from '../streams/metrics.js';

/** A runtime observer that feeds the prom-client metrics. */
export function metricsObserver(): RuntimeObserver {
  return {
    received: (stage, n) => m.recordsIn.inc({ stage }, n),
    outcome: (stage, kind, reason, ms) => m.recordOutcome(stage, kind as 'accepted' | 'rejected' | 'failed', ms, reason ?? ''),
    retried: (stage) => m.retries.inc({ stage }),
    deadLettered: (stage, reason) => m.deadLetters.inc({ stage, reason }),
    inFlight: (stage, n) => m.inFlight.set({ stage }, n),
    lag: (stage, n) => m.lag.set({ stage }, n),
  };
}

/** Start the metrics server and the terminal progress display as configured; `stop()` ends both. */
export async function startLiveOutput(cfg: Config, pipeline: Pipeline): Promise<{ stop(): Promise<void> }> {
  const server = cfg.metricsPort !== undefined ? await m.startMetricsServer(cfg.metricsPort) : undefined;
  let progress: { stop(): void } | undefined;
  if (process.stdout.isTTY && !process.env.CI) {
    const { startProgress } = await import('./progress.js');
    progress = startProgress(pipeline.runtimes.map((r) => r.name));
  }
  return {
    async stop() {
      progress?.stop();
      await server?.close();
    },
  };
}
