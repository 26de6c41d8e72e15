/**
 * Live per-stage progress for a terminal (cli-progress MultiBar, one bar per stage), fed from the same
 * prom-client objects as the /metrics endpoint (streams/metrics.ts → {@link stageSnapshot}), so the
 * terminal and Prometheus never disagree. When the output stream is not a TTY nothing is drawn and
 * {@link startProgress} returns undefined: the caller keeps the structured JSON logs instead.
 *
 * Bar per stage: value = outcomes so far (accepted + rejected + failed), total = outcomes + in flight +
 * lag (the work known to be waiting), so the bar fills as the backlog drains and grows when events arrive.
 */
import cliProgress from 'cli-progress';
import { STAGE_NAMES } from '../operators/pr/topology.js';
import { stageSnapshot, type StageSnapshot } from '../streams/metrics.js';
import { logger } from '../streams/log.js';

const log = logger({ component: 'progress' });

/** Options of {@link startProgress}. */
export interface ProgressOptions {
  /** Stages to show, in order (default: the six pipeline stages). */
  stages?: readonly string[];
  /** Redraw period, ms (default 500). */
  intervalMs?: number;
  /** Where to draw (default process.stderr, so stdout stays clean for data). Must be a TTY unless `force`. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Draw even when the stream is not a TTY (tests). */
  force?: boolean;
}

/** A running display. */
export interface Progress {
  /** Read the metrics and redraw now. */
  update(): Promise<void>;
  /** Final redraw, then stop drawing (leaves the last frame on screen). Never rejects. */
  stop(): Promise<void>;
}

const FORMAT = '{stage} |{bar}| {value}/{total}  ok {accepted}  rej {rejected}  fail {failed}  in-flight {inFlight}  lag {lag}  retry {retries}  dlq {dlq}';

/** Payload of one bar from one stage's snapshot. */
export function barPayload(s: StageSnapshot, width: number): { value: number; total: number; payload: Record<string, string | number> } {
  const done = s.accepted + s.rejected + s.failed;
  return {
    value: done,
    total: Math.max(1, done + s.inFlight + s.lag),
    payload: { stage: s.stage.padEnd(width), accepted: s.accepted, rejected: s.rejected, failed: s.failed, inFlight: s.inFlight, lag: s.lag, retries: s.retries, dlq: s.dlq },
  };
}

/**
 * Start the display, or return undefined when the stream is not a terminal (and not forced).
 * @param optsOrStages options, or just the stage names to show (then drawn on process.stderr)
 * Errors while reading metrics are logged, never thrown from the timer.
 */
export function startProgress(optsOrStages: ProgressOptions | readonly string[] = {}): Progress | undefined {
  const opts: ProgressOptions = Array.isArray(optsOrStages) ? { stages: optsOrStages } : (optsOrStages as ProgressOptions);
  const stream = opts.stream ?? process.stderr;
  if (!stream.isTTY && !opts.force) return undefined;
  const stages = opts.stages ?? STAGE_NAMES;
  const width = Math.max(...stages.map((s) => s.length));
  const multi = new cliProgress.MultiBar({
    format: FORMAT, stream, hideCursor: true, clearOnComplete: false, stopOnComplete: false, noTTYOutput: opts.force === true,
    notTTYSchedule: opts.intervalMs ?? 500, fps: 10, barsize: 24, autopadding: true, forceRedraw: true,
  }, cliProgress.Presets.shades_classic);
  const bars = new Map(stages.map((s) => [s, multi.create(1, 0, { stage: s.padEnd(width), accepted: 0, rejected: 0, failed: 0, inFlight: 0, lag: 0, retries: 0, dlq: 0 })]));
  const update = async (): Promise<void> => {
    for (const s of await stageSnapshot(stages)) {
      const bar = bars.get(s.stage);
      if (!bar) continue;
      const p = barPayload(s, width);
      bar.setTotal(p.total);
      bar.update(p.value, p.payload);
    }
    multi.update();
  };
  const timer = setInterval(() => {
    update().catch((err: unknown) => log.warn({ err: String(err) }, 'progress update failed'));
  }, opts.intervalMs ?? 500);
  timer.unref();
  let stopped = false;
  return {
    update,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      // Never rejects: callers stop the display on shutdown paths that must not fail because of it.
      await update().catch((err: unknown) => log.warn({ err: String(err) }, 'final progress update failed'));
      multi.stop();
    },
  };
}
