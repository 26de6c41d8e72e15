/**
 * Retries have one owner, the runtime (issue 13, fault 2): an LLM call that fails is one HTTP request, thrown
 * to the stage with `retriable` set, and the runtime re-runs the record from its due-time retry topic; a
 * programming error (TypeError) is never retried. Real parts: the embedded log and the local
 * chat-completions server reached through the `openai` client.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedTransport } from '../../../streams/transports/embedded.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import { StageRuntime } from '../../../streams/runtime.js';
import { PR_STAGES, allTopics, prCatalog } from '../../../operators/pr/topology.js';
import type { Stage } from '../../../streams/stage.js';
import { reject } from '../../../streams/types.js';
import type { PullRequestEvent, StageOutcome } from '../../../schemas/types.gen.js';
import { createLlmClient } from '../../../operators/llm/client.js';
import { agentLlmSchema } from '../../../operators/llm/config.js';
import { startChatServer, type ChatServer } from '../../helpers/chat-server.js';
import { waitFor } from '../../helpers/wait.js';
import { prEvent } from '../../helpers/records.js';

const serde = new EmbeddedSerde({ catalog: prCatalog() });
let dir: string | undefined;
let srv: ChatServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function outcomes(t: EmbeddedTransport): Promise<StageOutcome[]> {
  const out: StageOutcome[] = [];
  for (const p of await t.topicOffsets('stage.outcomes'))
    for (const r of await t.read('stage.outcomes', p.partition, '0', 10_000)) out.push((await serde.decode('stage.outcomes', r.value!, r.headers)) as StageOutcome);
  return out;
}

async function run(handle: Stage<PullRequestEvent, never>['handle']): Promise<{ t: EmbeddedTransport; rt: StageRuntime<PullRequestEvent, never>; outcome: StageOutcome }> {
  dir = mkdtempSync(join(tmpdir(), 'swe-retry-'));
  const t = new EmbeddedTransport({ path: join(dir, 'log.db'), pollMs: 5 });
  await t.ensureTopics(allTopics().map((name) => ({ name, partitions: 1 })));
  await t.produce([{ topic: 'pr.events', key: 'acme/widgets#1', ...serde.encodeSync('pr.events', prEvent(1)) }]);
  const rt = new StageRuntime<PullRequestEvent, never>({ stage: { name: 'filter', handle }, transport: t, serde, maxAttempts: 3, backoffMs: () => 10, topics: { ...PR_STAGES.filter, outcomes: 'stage.outcomes' } });
  await rt.start();
  await waitFor(async () => (await outcomes(t)).length >= 1, 'the outcome');
  await rt.stop();
  const all = await outcomes(t);
  expect(all).toHaveLength(1);
  return { t, rt, outcome: all[0]! };
}

describe('retries have one owner', () => {
  it('a failing LLM call is one request per attempt: the runtime retries the record, not the client', async () => {
    srv = await startChatServer([{ status: 503 }, { status: 500 }, { content: '{"keep": false}' }]);
    const llm = createLlmClient('judge', agentLlmSchema.parse({ baseURL: srv.baseURL, model: 'judge-model' }));
    const attempts: number[] = [];
    const { rt, outcome, t } = await run(async (env) => {
      attempts.push(env.attempt);
      const r = await llm.chat({ messages: [{ role: 'user', content: `PR ${env.value.number}` }], signal: env.signal });
      return reject('judge-rejected', r.message.content ?? '');
    });
    // Three attempts of the record, three HTTP requests in all: nothing multiplied.
    expect(attempts).toEqual([1, 2, 3]);
    expect(srv.requests).toHaveLength(3);
    expect(rt.counts.retried).toBe(2);
    expect(outcome).toMatchObject({ kind: 'rejected', reason: 'judge-rejected', attempts: 3 });
    await t.close();
  });

  it('a TypeError is not retried: one attempt, then the dead-letter topic', async () => {
    let calls = 0;
    const { rt, outcome, t } = await run(async () => {
      calls++;
      const missing = undefined as unknown as { call(): void };
      missing.call(); // a programming error: TypeError
      return reject('unreachable');
    });
    expect(calls).toBe(1);
    expect(rt.counts.retried).toBe(0);
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'not-retriable', error_class: 'TypeError', attempts: 1 });
    const dlq = await t.read('pr.events.dlq', 0, '0', 10);
    expect(dlq).toHaveLength(1);
    await t.close();
  });
});
