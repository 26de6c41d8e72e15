/**
 * Admission by free machine resources inside the stage runtime (issue 15 item 4): the gate, not the stage's
 * concurrency, decides how many handlers run; outcome durations exclude the wait for admission; a release on
 * every end (accepted, rejected, thrown) lets the next record in.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedTransport } from '../../../streams/transports/embedded.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import { StageRuntime } from '../../../streams/runtime.js';
import { ResourceGate } from '../../../streams/admission.js';
import type { Stage } from '../../../streams/stage.js';
import { reject, StageError } from '../../../streams/types.js';
import { PR_STAGES, allTopics, prCatalog } from '../../../operators/pr/topology.js';
import type { PullRequestEvent, StageOutcome } from '../../../schemas/types.gen.js';
import { waitFor } from '../../helpers/wait.js';
import { prEvent } from '../../helpers/records.js';

const serde = new EmbeddedSerde({ catalog: prCatalog() });
const TOPICS = { ...PR_STAGES.filter, outcomes: 'stage.outcomes' };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function logWith(n: number): Promise<EmbeddedTransport> {
  const dir = mkdtempSync(join(tmpdir(), 'swe-adm-'));
  dirs.push(dir);
  const t = new EmbeddedTransport({ path: join(dir, 'log.db'), pollMs: 5 });
  await t.ensureTopics(allTopics().map((name) => ({ name, partitions: 2 })));
  const recs = [];
  for (let i = 1; i <= n; i++) recs.push({ topic: 'pr.events', key: `acme/widgets#${i}`, ...(await serde.encode('pr.events', prEvent(i))) });
  await t.produce(recs);
  return t;
}

async function outcomes(t: EmbeddedTransport): Promise<StageOutcome[]> {
  const out: StageOutcome[] = [];
  for (const p of await t.topicOffsets('stage.outcomes'))
    for (const r of await t.read('stage.outcomes', p.partition, '0', 1_000_000)) out.push((await serde.decode('stage.outcomes', r.value!, r.headers)) as StageOutcome);
  return out;
}

describe('stage runtime with an admission gate', () => {
  it('runs no more handlers than the gate admits, releases on every end, and times only the work', async () => {
    const N = 9;
    const t = await logWith(N);
    let clock = 1_000_000;
    let running = 0;
    let peak = 0;
    const gates = new Map<string, () => void>();
    const stage: Stage<PullRequestEvent, unknown> = {
      name: 'filter',
      async handle(env) {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => gates.set(env.key, resolve));
        running--;
        clock += 1000; // every handler's own work takes 1 s of the test clock
        if (env.value.number % 3 === 0) throw new StageError('bad PR', { retriable: false });
        return reject('no-tests');
      },
    };
    // Two cores' worth, one core a record, an idle machine: at most two handlers at once although concurrency is 6.
    const gate = new ResourceGate({ cpus: 2, memoryBytes: 1 << 30, probe: () => ({ idleCpus: 2, freeMemoryBytes: 1 << 30 }) });
    const rt = new StageRuntime({
      stage, transport: t, serde, concurrency: 6, topics: TOPICS, now: () => clock,
      admission: { gate, cost: { cpus: 1, memoryBytes: 1 << 20 } },
    });
    await rt.start();
    for (let done = 0; done < N; ) {
      await waitFor(() => gates.size > 0, 'a handler to start');
      expect(running).toBeLessThanOrEqual(2);
      expect(gate.usage.admitted).toBeLessThanOrEqual(2);
      const [key, release] = gates.entries().next().value as [string, () => void];
      gates.delete(key);
      clock += 60_000; // time that the waiting records spend queued at the gate must not count
      release();
      done++;
    }
    await waitFor(async () => (await outcomes(t)).length === N, 'every outcome');
    await rt.stop();
    const all = await outcomes(t);
    expect(peak).toBe(2);
    expect(all.filter((o) => o.kind === 'failed')).toHaveLength(3);
    expect(all.filter((o) => o.kind === 'rejected')).toHaveLength(6);
    expect(gate.usage).toMatchObject({ admitted: 0, waiting: 0 });
    // A handler runs beside at most one other, so it is held through at most two of the test's 61 s steps (plus
    // the other's own seconds); the last records waited about four steps at the gate behind the others, and
    // that must not count (stamping the start before admission makes this 244 s).
    for (const o of all) expect(Number(o.duration_ms)).toBeLessThanOrEqual(125_000);
  });
});
