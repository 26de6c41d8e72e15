/**
 * The main job split across processes on the real Kafka broker and schema registry: one `swe-stream worker`
 * process per stage, two for verify, one for the sources and one for the sink — as a user scales out.
 * Asserts that every record of every stage's input has exactly one distinct outcome and that the verified
 * tasks reach tasks.stated, then stops the workers with SIGTERM (graceful: exit 0).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createRepo, type GeneratedRepo } from '../helpers/git-repos.js';
import { KafkaTransport } from '../../streams/transports/kafka.js';
import { TransportError } from '../../streams/transport.js';
import { RegistrySerde } from '../../streams/serde-registry.js';
import { readTopic } from '../../streams/read.js';
import { STAGE_NAMES, PR_STAGES, SINK_TOPICS, prCatalog } from '../../operators/pr/topology.js';
import type { TaskStated } from '../../schemas/types.gen.js';

const exec = promisify(execFile);
import { waitFor } from '../helpers/wait.js';

const ROOT = resolve(import.meta.dirname, '../..');
const brokers = process.env.SWE_STREAM_KAFKA_BROKERS ?? '127.0.0.1:9092';
const registry = process.env.SWE_STREAM_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';

let repo: GeneratedRepo;
let dataDir: string;
const workers: Array<{ name: string; child: ChildProcess; err: string }> = [];
let t: KafkaTransport;
const serde = new RegistrySerde({ url: registry, catalog: prCatalog() });

function worker(stage: string, extra: string[] = []): void {
  const args = [join(ROOT, 'bin/swe-stream.js'), 'worker', '--stage', stage, '--bus', 'kafka', '--data-dir', dataDir, ...extra];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, SWE_STREAM_OFFLINE: '1', SWE_STREAM_LOCAL_REPOS: repo.path, SWE_STREAM_CLICKHOUSE_URL: '', SWE_STREAM_KAFKA_BROKERS: brokers, SWE_STREAM_REGISTRY_URL: registry, SWE_STREAM_REGISTRY_AUTO_REGISTER: '1', SWE_STREAM_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const w = { name: stage, child, err: '' };
  child.stderr!.on('data', (d: Buffer) => (w.err = (w.err + d.toString()).slice(-4000)));
  workers.push(w);
}

/** True when every topic the test reads exists with leaders (the workers create them at start). */
async function topicsExist(transport: KafkaTransport): Promise<boolean> {
  const needed = ['tasks.stated', ...STAGE_NAMES.map((s) => PR_STAGES[s].input), ...SINK_TOPICS];
  try {
    for (const topic of new Set(needed)) await transport.topicOffsets(topic);
    return true;
  } catch (e) {
    if (e instanceof TransportError && e.retriable) return false;
    throw e;
  }
}

beforeAll(async () => {
  const id = randomUUID().slice(0, 6);
  // A repository name of its own, so records of earlier runs on the same broker never count here.
  repo = await createRepo({ language: 'python', repo: `acme/workers-${id}` });
  dataDir = mkdtempSync(join(tmpdir(), 'swe-workers-'));
});

afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  await t?.close();
  await repo?.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('swe-stream worker processes on Kafka', () => {
  it('run every stage as consumer-group members, two verify workers, and account for every input', async () => {
    worker('sink');
    for (const s of STAGE_NAMES) worker(s);
    worker('verify');
    worker('sources', ['--source', `git:${repo.path}`]);
    const mine = (k: string | null | undefined) => !!k && k.startsWith(`${repo.repo}#`);
    const fixPrs = repo.prs.filter((p) => p.kind === 'fix').length;
    const groups = [...STAGE_NAMES.map((s) => ({ group: `swe-stream.${s}`, topics: [PR_STAGES[s].input] })), { group: 'swe-stream.sink', topics: [...SINK_TOPICS] }];
    // Idle = our tasks reached tasks.stated and every group has committed everything it reads.
    await waitFor(
      async () => {
        for (const w of workers) if (w.child.exitCode !== null) throw new Error(`worker ${w.name} exited ${w.child.exitCode}: ${w.err}`);
        const fresh = new KafkaTransport({ brokers: brokers.split(','), metadataWaitMs: 1000 });
        try {
          // On a fresh broker the workers create the topics only once they are up (minutes on a loaded machine):
          // until then a topic has no metadata and the transport's retriable error means "not yet".
          if (!(await topicsExist(fresh))) return false;
          const stated = (await readTopic<TaskStated>(fresh, serde, 'tasks.stated', { key: mine })).filter((x) => mine(x.candidate.pr_id));
          if (new Set(stated.map((x) => x.instance_id)).size < fixPrs) return false;
          for (const g of groups) {
            const committed = await fresh.groupOffsets(g.group, g.topics);
            for (const topic of g.topics)
              for (const p of await fresh.topicOffsets(topic))
                if (BigInt(committed.find((c) => c.topic === topic && c.partition === p.partition)?.offset ?? p.low) < BigInt(p.high)) return false;
          }
          return true;
        } finally {
          await fresh.close();
        }
      },
      'every group to drain with our tasks stated',
      1_500_000,
      5_000,
    );
    // Graceful stop: every worker leaves its group and exits 0 (the sink flushes before it commits).
    const exits = workers.map((w) => new Promise<number | null>((r) => (w.child.exitCode !== null ? r(w.child.exitCode) : w.child.on('exit', (c) => r(c)))));
    for (const w of workers) w.child.kill('SIGTERM');
    expect(await Promise.all(exits)).toEqual(workers.map(() => 0));
    // Every input record of every stage has exactly one distinct outcome in the sink's tables.
    t = new KafkaTransport({ brokers: brokers.split(',') });
    const { stdout } = await exec(process.execPath, [join(ROOT, 'bin/swe-stream.js'), 'query', '--json', '--data-dir', dataDir,
      `SELECT stage, uniqExact(outcome_id) AS n FROM stage_outcomes FINAL WHERE startsWith(key, '${repo.repo}#') GROUP BY stage`], { cwd: ROOT, env: { ...process.env, SWE_STREAM_CLICKHOUSE_URL: '' } });
    const counts = Object.fromEntries((JSON.parse(stdout) as Array<{ stage: string; n: number }>).map((r) => [r.stage, Number(r.n)]));
    for (const stage of STAGE_NAMES) {
      const inputs = (await readTopic<{ candidate?: { pr_id: string }; pr_id?: string }>(t, serde, PR_STAGES[stage].input, { key: mine })).filter((r) => mine(r.pr_id ?? r.candidate?.pr_id));
      expect(counts[stage] ?? 0, stage).toBe(inputs.length);
    }
    expect(counts.filter).toBe(repo.prs.length);
    expect(counts.distill).toBe(fixPrs);
  }, 1_800_000); // cold environment builds and verification of two PRs on a busy 2-core machine
});
