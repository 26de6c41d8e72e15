/**
 * How `swe-stream run` and `worker` processes end (issue 13 fault 1, issue 14): a runner that dies takes the
 * process down with exit 1 and the cause on stderr, in follow mode too (a supervisor restarts only a process
 * that exits); SIGTERM during --until-idle prints the summary and exits 143 when records are left.
 * Real parts: the CLI as a child process, the embedded log, the ClickHouse server.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createClient } from '@clickhouse/client';
import { EmbeddedTransport } from '../../../streams/transports/embedded.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import type { StageOutcome } from '../../../schemas/types.gen.js';
import { prEvent } from '../../helpers/records.js';
import { waitFor } from '../../helpers/wait.js';
import { prCatalog } from '../../../operators/pr/topology.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const CLICKHOUSE = process.env.SWE_STREAM_CLICKHOUSE_URL || 'http://127.0.0.1:8123';
const serde = new EmbeddedSerde({ catalog: prCatalog() });
const cleanup: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

interface Cli {
  child: ChildProcess;
  out: string;
  err: string;
  exit: Promise<number | null>;
}

function cli(args: string[]): Cli {
  const child = spawn(process.execPath, [join(ROOT, 'bin/swe-stream.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, SWE_STREAM_OFFLINE: '1', SWE_STREAM_LOG_LEVEL: 'warn', CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const c: Cli = { child, out: '', err: '', exit: new Promise((r) => child.on('exit', (code) => r(code))) };
  child.stdout!.on('data', (d: Buffer) => (c.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (c.err = (c.err + d.toString()).slice(-20_000)));
  cleanup.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return c;
}

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'swe-exit-'));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function outcome(n: number): StageOutcome {
  return {
    outcome_id: `exit-test-${n}`, stage: 'filter', key: `acme/widgets#${n}`, kind: 'rejected', reason: 'not-merged', detail: null,
    error_class: null, retriable: null, attempts: 1, input_topic: 'pr.events', input_partition: 0, input_offset: String(n),
    output_topic: null, ts_ms: Date.now(), duration_ms: 1, repo: 'acme/widgets', language: null, method: 'rules', model: null,
    cache_hit: null, tokens_in: 0, tokens_out: 0, cost_usd: 0,
  };
}

describe('process exits', () => {
  it('a follow-mode sink worker whose ClickHouse table was dropped exits 1 with the cause', async () => {
    const dir = dataDir();
    const database = `swe_exit_${randomUUID().slice(0, 8)}`;
    const ch = createClient({ url: CLICKHOUSE });
    cleanup.push(async () => {
      await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await ch.close();
    });
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ clickhouse: { url: CLICKHOUSE, database } }));
    const w = cli(['worker', '--stage', 'sink', '--bus', 'embedded', '--config', config, '--data-dir', dir]);
    const tableExists = async () => {
      const r = await ch.query({ query: `EXISTS TABLE ${database}.stage_outcomes`, format: 'TabSeparated' });
      return (await r.text()).trim() === '1';
    };
    await waitFor(async () => {
      if (w.child.exitCode !== null) throw new Error(`worker exited ${w.child.exitCode}: ${w.err}`);
      return tableExists().catch(() => false);
    }, 'the sink worker to create its tables', 120_000, 200);
    await ch.command({ query: `DROP TABLE ${database}.stage_outcomes` });
    const log = new EmbeddedTransport({ path: join(dir, 'log.db') });
    cleanup.push(() => log.close());
    await log.ensureTopics([{ name: 'stage.outcomes', partitions: 3 }]); // the worker's count: existing topics are left as they are
    const enc = await serde.encode('stage.outcomes', outcome(1));
    await log.produce([{ topic: 'stage.outcomes', key: 'acme/widgets#1', value: enc.value, headers: enc.headers }]);
    // Before the fix a dead sink runner left the process up, silent, for ever.
    await waitFor(() => w.child.exitCode !== null, 'the worker to exit after its sink died', 60_000, 50);
    expect(await w.exit).toBe(1);
    expect(w.err).toMatch(/swe-stream: sink stopped: .*stage_outcomes/);
  });

  it('SIGTERM during --until-idle prints the summary and exits 143 when records are left', async () => {
    const dir = dataDir();
    const log = new EmbeddedTransport({ path: join(dir, 'log.db') });
    await log.ensureTopics([{ name: 'pr.events', partitions: 3 }]);
    const N = 30_000;
    for (let i = 0; i < N; i += 5000) {
      const batch = [];
      for (let n = i + 1; n <= i + 5000; n++) {
        const ev = prEvent(n, { merged: false });
        const enc = await serde.encode('pr.events', ev);
        batch.push({ topic: 'pr.events', key: ev.pr_id, value: enc.value, headers: enc.headers });
      }
      await log.produce(batch);
    }
    const r = cli(['run', '--until-idle', '--stages', 'filter', '--no-sink', '--bus', 'embedded', '--data-dir', dir]);
    // Signal once the filter has committed something: it is running, and far from done with 30,000 records.
    await waitFor(async () => {
      if (r.child.exitCode !== null) throw new Error(`run exited ${r.child.exitCode}: ${r.err}`);
      const c = await log.groupOffsets('swe-stream.filter', ['pr.events']);
      return c.some((x) => BigInt(x.offset) > 0n);
    }, 'the filter to commit its first records', 120_000, 20);
    r.child.kill('SIGTERM');
    const code = await r.exit;
    await log.close();
    const summary = JSON.parse(r.out.trim().split('\n').pop()!) as { stopped: string; remaining: number; stages: Array<{ stage: string; rejected: number }> };
    expect(summary.stopped).toBe('SIGTERM');
    expect(summary.remaining).toBeGreaterThan(0);
    expect(summary.stages[0]!.rejected + summary.remaining).toBeGreaterThanOrEqual(N);
    expect(code).toBe(143);
  });
});
