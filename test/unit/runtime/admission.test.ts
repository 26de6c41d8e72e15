import { describe, expect, it } from 'vitest';
import { AdmissionAbortedError, ResourceGate, hostProbe, type ResourceReading } from '../../../streams/admission.js';

const GiB = 1024 ** 3;

/** A gate over a machine whose readings the test sets; a large pollMs so only pump() re-reads it. */
function gate(reading: ResourceReading, budget = { cpus: 2, memoryBytes: 8 * GiB }) {
  const machine = { ...reading };
  const g = new ResourceGate({ ...budget, probe: () => machine, pollMs: 3_600_000 });
  return { g, machine };
}
const settled = async <T>(p: Promise<T>) => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('ResourceGate', () => {
  it('admits what fits the budget and the idle machine, and holds the rest until a release', async () => {
    const { g } = gate({ idleCpus: 2, freeMemoryBytes: 16 * GiB });
    const a = await g.acquire({ cpus: 1, memoryBytes: 2 * GiB });
    const b = await g.acquire({ cpus: 1, memoryBytes: 2 * GiB });
    const c = g.acquire({ cpus: 1, memoryBytes: 2 * GiB });
    expect(await settled(c)).toBe(false);
    expect(g.usage).toMatchObject({ admitted: 2, waiting: 1, reserved: { cpus: 2 } });
    a();
    a(); // idempotent: a second call frees nothing more
    expect(await settled(c)).toBe(true);
    expect(g.usage.reserved.cpus).toBe(2);
    b();
    (await c)();
    expect(g.usage).toMatchObject({ admitted: 0, waiting: 0, reserved: { cpus: 0, memoryBytes: 0 } });
  });

  it('waits while other load keeps the machine busy, though the budget has room', async () => {
    const { g, machine } = gate({ idleCpus: 2, freeMemoryBytes: 16 * GiB });
    const first = await g.acquire({ cpus: 0.5, memoryBytes: GiB });
    machine.idleCpus = 0.2; // someone else's build
    const second = g.acquire({ cpus: 1, memoryBytes: GiB });
    expect(await settled(second)).toBe(false);
    machine.idleCpus = 1.5;
    g.pump();
    expect(await settled(second)).toBe(true);
    first();
    (await second)();
  });

  it('waits for free memory', async () => {
    const { g, machine } = gate({ idleCpus: 2, freeMemoryBytes: 16 * GiB });
    const first = await g.acquire({ cpus: 0.1, memoryBytes: GiB });
    machine.freeMemoryBytes = GiB;
    const big = g.acquire({ cpus: 0.1, memoryBytes: 3 * GiB });
    expect(await settled(big)).toBe(false);
    machine.freeMemoryBytes = 6 * GiB;
    g.pump();
    expect(await settled(big)).toBe(true);
    first();
    (await big)();
  });

  it('always admits one request when nothing runs, even one larger than the budget', async () => {
    const { g } = gate({ idleCpus: 0, freeMemoryBytes: 0 });
    const huge = await g.acquire({ cpus: 64, memoryBytes: 1024 * GiB });
    expect(g.usage.admitted).toBe(1);
    huge();
  });

  it('is first in, first out: a large request is not overtaken by later small ones', async () => {
    const { g } = gate({ idleCpus: 2, freeMemoryBytes: 16 * GiB });
    const a = await g.acquire({ cpus: 1.5, memoryBytes: GiB });
    const large = g.acquire({ cpus: 1, memoryBytes: GiB });
    const small = g.acquire({ cpus: 0.25, memoryBytes: GiB });
    expect(await settled(large)).toBe(false);
    expect(await settled(small)).toBe(false);
    a();
    expect(await settled(large)).toBe(true);
    expect(await settled(small)).toBe(true);
  });

  it('an aborted waiter leaves the queue with AdmissionAbortedError and lets the next one in', async () => {
    const { g } = gate({ idleCpus: 2, freeMemoryBytes: 16 * GiB });
    const a = await g.acquire({ cpus: 2, memoryBytes: GiB });
    const ac = new AbortController();
    const w1 = g.acquire({ cpus: 2, memoryBytes: GiB }, ac.signal);
    const w2 = g.acquire({ cpus: 1, memoryBytes: GiB });
    ac.abort();
    await expect(w1).rejects.toBeInstanceOf(AdmissionAbortedError);
    expect(g.usage.waiting).toBe(1);
    a();
    expect(await settled(w2)).toBe(true);
    await expect(g.acquire({ cpus: 1, memoryBytes: 1 }, AbortSignal.abort())).rejects.toBeInstanceOf(AdmissionAbortedError);
  });

  it('reads the real machine: idle CPUs within the core count, available memory above zero', () => {
    const r = hostProbe()();
    expect(r.idleCpus).toBeGreaterThanOrEqual(0);
    expect(r.freeMemoryBytes).toBeGreaterThan(0);
  });
});
