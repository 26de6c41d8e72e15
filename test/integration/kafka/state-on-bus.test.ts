/**
 * State on the bus (issue 13, fault 3), on the real broker and registry: two filter workers with separate data
 * directories and separate connections (two machines) agree on duplicates, and a sources worker restarted with
 * an empty data directory resumes from its cursor on the bus instead of starting over.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { KafkaTransport } from '../../../streams/transports/kafka.js';
import { RegistrySerde } from '../../../streams/serde-registry.js';
import { StageRuntime } from '../../../streams/runtime.js';
import { prCatalog } from '../../../operators/pr/topology.js';
import { runSource } from '../../../streams/source-runner.js';
import { readTopic } from '../../../streams/read.js';
import { filterStage, PATCH_SEEN_STORE } from '../../../operators/filter.js';
import { MirrorCache } from '../../../operators/pr/mirror.js';
import { GitSource } from '../../../connectors/sources/git.js';
import type { PrCandidate, PullRequestEvent, StageOutcome } from '../../../schemas/types.gen.js';
import { createRepo, type GeneratedRepo } from '../../helpers/git-repos.js';
import { BROKERS, REGISTRY_URL, uniq, waitFor } from './helpers.js';

const catalog = prCatalog();
const registerTopic = catalog.register.bind(catalog);
const serde = new RegistrySerde({ url: REGISTRY_URL, autoRegisterSchemas: true, catalog });
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});
const machine = async () => {
  const t = new KafkaTransport({ brokers: BROKERS });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'swe-machine-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }), () => t.close());
  return { t, dataDir };
};

async function gitEvents(repo: GeneratedRepo, mirrors: MirrorCache): Promise<PullRequestEvent[]> {
  const out: PullRequestEvent[] = [];
  for await (const it of new GitSource(`git:${repo.path}`, repo.path, mirrors).items({ signal: new AbortController().signal, follow: false })) if (it.kind === 'event') out.push(it.event);
  return out;
}

describe('state on the bus', () => {
  it('two filter workers on separate data directories agree on duplicates', async () => {
    const repo = await createRepo({ language: 'python' });
    cleanup.push(() => repo.cleanup());
    const a = await machine();
    const b = await machine();
    const id = uniq('dup');
    const input = `${id}.in`;
    const output = `${id}.out`;
    const outcomes = `${id}.outcomes`;
    registerTopic(input, 'PullRequestEvent');
    registerTopic(output, 'PrCandidate');
    registerTopic(outcomes, 'StageOutcome');
    await a.t.ensureTopics([input, output, outcomes, `${input}.retry.filter`, `${input}.dlq`].map((name) => ({ name, partitions: 4 })));
    // The two fixes with tests (#1, #2), each published under 6 pr_ids (forks, backports): 12 events, 2 patches.
    const evs = (await gitEvents(repo, new MirrorCache({ dataDir: a.dataDir, network: false }))).filter((e) => e.number === 1 || e.number === 2);
    const copies = evs.flatMap((e) => Array.from({ length: 6 }, (_, i) => ({ ...e, pr_id: i === 0 ? e.pr_id : `fork${i}/mathlib#${e.number}` })));
    await a.t.produce(await Promise.all(copies.map(async (e) => ({ topic: input, key: e.pr_id, ...(await serde.encode(input, e)) }))));

    const group = `swe-stream.filter.${id}`;
    const worker = async (m: { t: KafkaTransport; dataDir: string }) => {
      const stage = filterStage({ mirrors: new MirrorCache({ dataDir: m.dataDir, network: false, localPaths: [repo.path] }), seen: await m.t.openStore(`${id}.patch-seen`) });
      const rt = new StageRuntime({ stage, transport: m.t, serde, concurrency: 4, groupId: group, topics: { input, output, outcomes } });
      await rt.start();
      cleanup.push(() => rt.stop());
      return rt;
    };
    const [ra, rb] = await Promise.all([worker(a), worker(b)]);
    // Kafka is at-least-once: a record revoked mid-flight when the second member joins may be redone by the
    // other one, writing its outcome again under the same outcome_id (the sink keeps one). Count ids.
    const distinct = async () => {
      const byId = new Map<string, StageOutcome>();
      for (const o of await readTopic<StageOutcome>(a.t, serde, outcomes)) {
        const prev = byId.get(o.outcome_id);
        if (prev) expect([prev.kind, prev.reason]).toEqual([o.kind, o.reason]); // a redo decides the same
        byId.set(o.outcome_id, o);
      }
      return [...byId.values()];
    };
    await waitFor(async () => (await distinct()).length >= copies.length, 'an outcome per event', 120_000);
    const all = await distinct();
    expect(all).toHaveLength(copies.length);
    // Both members worked (the group split the partitions), yet exactly one PR per patch was accepted.
    expect(ra.counts.received).toBeGreaterThan(0);
    expect(rb.counts.received).toBeGreaterThan(0);
    expect(all.filter((o) => o.kind === 'accepted')).toHaveLength(2);
    expect(all.filter((o) => o.reason === 'duplicate')).toHaveLength(copies.length - 2);
    const accepted = await readTopic<PrCandidate>(a.t, serde, output);
    expect(new Set(accepted.map((c) => c.candidate.patch_hash)).size).toBe(2);
    expect(new Set(accepted.map((c) => c.candidate.pr_id)).size).toBe(2);
    expect(PATCH_SEEN_STORE).toBe('filter.patch-seen');
  });

  it('a sources worker restarted with an empty data directory resumes from its cursor on the bus', async () => {
    const repo = await createRepo({ language: 'javascript' });
    cleanup.push(() => repo.cleanup());
    const topic = `${uniq('src')}.events`;
    registerTopic(topic, 'PullRequestEvent');
    const target = { topic, dlqTopic: `${topic}.dlq`, keyOf: (e: PullRequestEvent) => e.pr_id };
    const first = await machine();
    await first.t.ensureTopics([{ name: topic, partitions: 1 }, { name: target.dlqTopic, partitions: 1 }]);
    const uri = `git:${repo.path}`;
    const run = async (m: { t: KafkaTransport; dataDir: string }) =>
      runSource(new GitSource(uri, repo.path, new MirrorCache({ dataDir: m.dataDir, network: false })), m.t, serde, { signal: new AbortController().signal, follow: false, target, lingerMs: 5 });
    const s1 = await run(first);
    expect(s1.events).toBe(repo.prs.length);
    await first.t.close();

    // A new PR lands; the worker comes back on another machine (new connection, empty data directory).
    execFileSync('git', ['-C', repo.path, 'commit', '-q', '--allow-empty', '-m', 'Fix a late bug (#42)'], { env: { ...process.env, GIT_AUTHOR_NAME: 'c', GIT_AUTHOR_EMAIL: 'c@x', GIT_COMMITTER_NAME: 'c', GIT_COMMITTER_EMAIL: 'c@x' } });
    const second = await machine();
    const s2 = await run(second);
    expect(s2.events).toBe(1);
    const evs = await readTopic<PullRequestEvent>(second.t, serde, topic);
    expect(evs).toHaveLength(repo.prs.length + 1);
    expect(evs.filter((e) => e.number === 42)).toHaveLength(1);
  });
});
