/**
 * Crash safety of the embedded run: `swe-stream run` is killed with SIGKILL at random points and restarted
 * until it finishes; the topics then hold exactly what a clean run's hold — no output lost, none repeated.
 * Input: the two real GH Archive samples plus a generated repository whose merged PRs the filter accepts.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EmbeddedTransport } from '../../../streams/transports/embedded.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import type { StageOutcome, PrCandidate } from '../../../schemas/types.gen.js';
import { createRepo, type GeneratedRepo } from '../../helpers/git-repos.js';
import { prCatalog } from '../../../operators/pr/topology.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const DATA = resolve(ROOT, 'test/fixtures/gharchive');
const serde = new EmbeddedSerde({ catalog: prCatalog() });
const cleanup: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanup) await c();
});

/** Start the CLI; resolve with its exit code, or kill it with SIGKILL after `killAfterMs`. */
function runCli(dataDir: string, sources: string[], killAfterMs?: number): Promise<number | string> {
  return new Promise((res, rej) => {
    const args = [join(ROOT, 'bin/swe-stream.js'), 'run', '--stages', 'filter', '--until-idle', '--no-sink', '--data-dir', dataDir, ...sources.flatMap((s) => ['--source', s])];
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, SWE_STREAM_OFFLINE: '1', SWE_STREAM_LOG_LEVEL: 'error' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = killAfterMs !== undefined ? setTimeout(() => child.kill('SIGKILL'), killAfterMs) : undefined;
    child.on('error', rej);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 && signal === null) rej(new Error(`swe-stream run exited ${code}: ${err.slice(-2000)}`));
      res(signal ?? code!);
    });
  });
}

/** Every record of the topics that carry outputs, as comparable strings (multiset, sorted). */
async function snapshot(dataDir: string): Promise<{ outcomes: string[]; candidates: string[]; events: number }> {
  const t = new EmbeddedTransport({ path: join(dataDir, 'log.db') });
  const read = async <T>(topic: string) => {
    const out: T[] = [];
    for (const p of await t.topicOffsets(topic)) for (const r of await t.read(topic, p.partition, '0', 1e9)) out.push((await serde.decode(topic, r.value!, r.headers)) as T);
    return out;
  };
  const outcomes = (await read<StageOutcome>('stage.outcomes')).map((o) => `${o.outcome_id} ${o.key} ${o.kind} ${o.reason ?? ''}`).sort();
  const candidates = (await read<PrCandidate>('pr.candidates')).map((c) => `${c.candidate.pr_id} ${c.candidate.patch_hash}`).sort();
  const events = (await read<unknown>('pr.events')).length;
  await t.close();
  return { outcomes, candidates, events };
}

describe('embedded run under SIGKILL', () => {
  it('ends with the same outputs as a clean run', async () => {
    const repo: GeneratedRepo = await createRepo({ language: 'python' });
    cleanup.push(() => repo.cleanup());
    const sources = [`gharchive:${join(DATA, '2015-01-01-12.json.gz')}`, `gharchive:${join(DATA, '2021-07-21-06-to-09.json.gz')}`, `git:${repo.path}`];
    const clean = mkdtempSync(join(tmpdir(), 'crash-clean-'));
    const crashed = mkdtempSync(join(tmpdir(), 'crash-kill-'));
    cleanup.push(() => rmSync(clean, { recursive: true, force: true }), () => rmSync(crashed, { recursive: true, force: true }));
    expect(await runCli(clean, sources)).toBe(0);
    // Time a second run in a fresh directory, warm:
    // the first start also fills the TypeScript compile cache, and kill times drawn from a cold run's
    // duration could all land after a warm run has finished.
    const warm = mkdtempSync(join(tmpdir(), 'crash-warm-'));
    cleanup.push(() => rmSync(warm, { recursive: true, force: true }));
    const t0 = Date.now();
    expect(await runCli(warm, sources)).toBe(0);
    const cleanMs = Date.now() - t0;
    const expected = await snapshot(clean);
    expect(expected.events).toBe(367 + 64 + repo.prs.length);
    expect(expected.outcomes).toHaveLength(expected.events);
    expect(expected.candidates.length).toBeGreaterThan(0);
    // Kill at random points spread over a clean run's duration, then let it finish.
    let kills = 0;
    for (let i = 0; i < 6; i++) {
      const at = Math.floor(200 + Math.random() * 0.6 * Math.max(0, cleanMs - 200));
      const r = await runCli(crashed, sources, at);
      if (r === 'SIGKILL') kills++;
      else break;
    }
    expect(await runCli(crashed, sources)).toBe(0);
    expect(kills).toBeGreaterThan(0);
    const got = await snapshot(crashed);
    expect(got.events).toBe(expected.events);
    expect(got.outcomes).toEqual(expected.outcomes);
    expect(got.candidates).toEqual(expected.candidates);
  });
});
