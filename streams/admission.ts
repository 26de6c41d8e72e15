/**
 * Admission by free machine resources instead of a fixed concurrency (issue 15 item 4): a record's work starts
 * when the CPUs and memory it is expected to hold are free, so the env build of one repository overlaps the
 * verification of another while the machine has room, and nothing starts while it has none.
 *
 * A {@link ResourceGate} is shared by every stage runtime of a process that declares a cost. It keeps a FIFO
 * queue (a large request is never overtaken forever by small ones) and admits the head when
 *   1. nothing is admitted at all (progress is guaranteed even when one request exceeds the budget), or
 *   2. the reserved costs plus the head's fit the budget AND the probe says the machine really has that much
 *      idle CPU and free memory (other processes, containers of other workers, a user's build).
 * The probe is re-read on every release and every `pollMs` while someone waits.
 */
import os from 'node:os';
import fs from 'node:fs';

/** What one record's work is expected to hold while it runs: CPUs (cores, fractional allowed) and memory (bytes). */
export interface ResourceCost {
  cpus: number;
  memoryBytes: number;
}

/** What the machine has free now: idle CPUs (cores) since the last reading and available memory (bytes). */
export interface ResourceReading {
  idleCpus: number;
  freeMemoryBytes: number;
}

/** Reads {@link ResourceReading}s. */
export type ResourceProbe = () => ResourceReading;

/** Settings of a {@link ResourceGate}. */
export interface ResourceGateOptions {
  /** CPUs the gate may hand out (default: the machine's cores). */
  cpus?: number;
  /** Memory the gate may hand out, bytes (default: 80% of the machine's memory). */
  memoryBytes?: number;
  /** Machine reading (default {@link hostProbe}); tests pass their own. */
  probe?: ResourceProbe;
  /** How often waiting requests re-read the probe, ms (default 2000). */
  pollMs?: number;
}

/** Releases an admission; idempotent. */
export type Release = () => void;

interface Waiter {
  cost: ResourceCost;
  admit: (r: Release) => void;
  reject: (e: unknown) => void;
}

/** Aborted while waiting for admission; not retriable by itself (the record's revocation or shutdown is the cause). */
export class AdmissionAbortedError extends Error {
  readonly retriable = false;
  constructor() {
    super('aborted while waiting for machine resources');
    this.name = 'AdmissionAbortedError';
  }
}

/**
 * CPU idle time between two calls, from /proc/stat (Linux) or os.cpus() elsewhere, and MemAvailable (which,
 * unlike os.freemem(), counts reclaimable page cache — a machine full of cached image layers is not full).
 */
export function hostProbe(): ResourceProbe {
  let last = cpuJiffies();
  return () => {
    const now = cpuJiffies();
    const total = now.total - last.total;
    const idleShare = total > 0 ? (now.idle - last.idle) / total : 1;
    last = now;
    return { idleCpus: idleShare * os.cpus().length, freeMemoryBytes: memAvailable() };
  };
}

function cpuJiffies(): { idle: number; total: number } {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { idle: f[3]! + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) };
  } catch {
    // Not Linux: os.cpus() times serve the same purpose at a coarser grain.
    let idle = 0;
    let total = 0;
    for (const c of os.cpus()) {
      idle += c.times.idle;
      total += c.times.idle + c.times.user + c.times.sys + c.times.nice + c.times.irq;
    }
    return { idle, total };
  }
}

function memAvailable(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // fall through to the portable figure
  }
  return os.freemem();
}

/** Admits work by free CPU and memory; see the module comment for the rule. */
export class ResourceGate {
  private readonly budget: ResourceCost;
  private readonly probe: ResourceProbe;
  private readonly pollMs: number;
  private reserved: ResourceCost = { cpus: 0, memoryBytes: 0 };
  private admitted = 0;
  private readonly queue: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(o: ResourceGateOptions = {}) {
    this.budget = { cpus: o.cpus ?? os.cpus().length, memoryBytes: o.memoryBytes ?? Math.floor(os.totalmem() * 0.8) };
    this.probe = o.probe ?? hostProbe();
    this.pollMs = o.pollMs ?? 2000;
  }

  /** Admissions currently held and what they reserve. */
  get usage(): { admitted: number; waiting: number; reserved: ResourceCost } {
    return { admitted: this.admitted, waiting: this.queue.length, reserved: { ...this.reserved } };
  }

  /**
   * Wait until `cost` is admitted. Resolves with the release to call when the work ends (success or not).
   * @throws AdmissionAbortedError when `signal` aborts first (the request leaves the queue).
   */
  acquire(cost: ResourceCost, signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(new AdmissionAbortedError());
    return new Promise<Release>((resolve, reject) => {
      const w: Waiter = { cost, admit: resolve, reject };
      const onAbort = () => {
        const i = this.queue.indexOf(w);
        if (i < 0) return;
        this.queue.splice(i, 1);
        reject(new AdmissionAbortedError());
        this.pump();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      w.admit = (r) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(r);
      };
      this.queue.push(w);
      this.pump();
    });
  }

  /** Re-read the machine and admit what fits (called on release, on a timer while waiting, and by tests). */
  pump(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.cost)) this.admit(this.queue.shift()!);
    if (this.queue.length > 0 && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.pollMs);
      this.timer.unref();
    }
  }

  private fits(cost: ResourceCost): boolean {
    if (this.admitted === 0) return true;
    const cpus = this.reserved.cpus + cost.cpus;
    const mem = this.reserved.memoryBytes + cost.memoryBytes;
    if (cpus > this.budget.cpus || mem > this.budget.memoryBytes) return false;
    const r = this.probe();
    // Half a core idle per core asked for: installs and test suites rarely hold a whole core throughout, so
    // waiting for a fully idle core would leave the machine part-idle; less than half means it is saturated.
    return r.idleCpus >= cost.cpus * 0.5 && r.freeMemoryBytes >= cost.memoryBytes;
  }

  private admit(w: Waiter): void {
    this.admitted++;
    this.reserved = { cpus: this.reserved.cpus + w.cost.cpus, memoryBytes: this.reserved.memoryBytes + w.cost.memoryBytes };
    let done = false;
    w.admit(() => {
      if (done) return;
      done = true;
      this.admitted--;
      this.reserved = { cpus: this.reserved.cpus - w.cost.cpus, memoryBytes: this.reserved.memoryBytes - w.cost.memoryBytes };
      this.pump();
    });
  }
}
