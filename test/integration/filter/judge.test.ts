/** The filter's optional LLM judge, against a real chat-completions server with scripted replies. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRepo, type GeneratedRepo } from '../../helpers/git-repos.js';
import { startChatServer } from '../../helpers/chat-server.js';
import { filterStage, PATCH_SEEN_STORE, PR_JUDGE_PROMPT_VERSION } from '../../../operators/filter.js';
import { tempStore } from '../../helpers/store.js';
import { MirrorCache } from '../../../operators/pr/mirror.js';
import { GitSource } from '../../../connectors/sources/git.js';
import { createLlmClient } from '../../../operators/llm/client.js';
import { agentLlmSchema } from '../../../operators/llm/config.js';
import type { PullRequestEvent } from '../../../schemas/types.gen.js';

const env = (value: PullRequestEvent) => ({ key: value.pr_id, value, origin: { topic: 'pr.events', partition: 0, offset: '0' }, attempt: 1, signal: new AbortController().signal });

describe('filter with the LLM judge', () => {
  let repo: GeneratedRepo;
  let dataDir: string;
  let mirrors: MirrorCache;
  let evs: PullRequestEvent[];
  beforeAll(async () => {
    repo = await createRepo({ language: 'python', prs: [{ number: 1, style: 'merge', kind: 'fix' }, { number: 2, style: 'squash', kind: 'fix' }, { number: 3, style: 'squash', kind: 'docs' }] });
    dataDir = await mkdtemp(path.join(tmpdir(), 'filter-judge-'));
    mirrors = new MirrorCache({ dataDir, network: false, localPaths: [repo.path] });
    evs = [];
    for await (const it of new GitSource('git:x', repo.path, mirrors).items({ signal: new AbortController().signal, follow: false })) if (it.kind === 'event') evs.push(it.event);
  });
  afterAll(async () => {
    await repo.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps, drops, and is only asked about PRs that passed the rules; provenance and cost come from the call', async () => {
    const srv = await startChatServer([
      { content: '{"keep": true, "score": 8, "reason": "bug fix with a test"}', usage: { prompt_tokens: 900, completion_tokens: 20 } },
      { content: '{"keep": false, "score": 2, "reason": "trivial change"}', usage: { prompt_tokens: 800, completion_tokens: 15 } },
    ]);
    try {
      const judge = createLlmClient('judge', agentLlmSchema.parse({ baseURL: srv.baseURL, model: 'judge-model', priceInPerMTok: 1, priceOutPerMTok: 2, maxRetries: 0 }));
      const stage = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE), judge });
      const o1 = await stage.handle(env(evs[0]!));
      expect(o1.kind).toBe('accepted');
      if (o1.kind !== 'accepted') return;
      expect(o1.value.provenance[0]).toMatchObject({ stage: 'filter', method: 'agent', model: 'judge-model', prompt_version: PR_JUDGE_PROMPT_VERSION, tokens_in: 900, tokens_out: 20 });
      expect(o1.value.provenance[0]!.cost_usd).toBeCloseTo((900 * 1 + 20 * 2) / 1e6, 9);
      expect(o1.meta).toMatchObject({ method: 'agent', model: 'judge-model', tokensIn: 900 });
      const asked = JSON.stringify(srv.requests[0]!.body.messages);
      expect(asked).toContain(evs[0]!.title!);
      expect(asked).toContain('mathlib/clamp.py');
      expect(await stage.handle(env(evs[1]!))).toMatchObject({ kind: 'rejected', reason: 'judge-rejected', detail: 'trivial change' });
      expect(await stage.handle(env(evs[2]!))).toMatchObject({ reason: 'docs-config-only' }); // rules first: no call
      expect(srv.requests).toHaveLength(2);
    } finally {
      await srv.close();
    }
  });

  it('an unparseable answer keeps the PR; an HTTP failure is a failed outcome with the client\'s retriable flag', async () => {
    const srv = await startChatServer([{ content: 'I think it is fine.' }, { status: 401, message: 'bad key' }]);
    try {
      const judge = createLlmClient('judge', agentLlmSchema.parse({ baseURL: srv.baseURL, model: 'judge-model', maxRetries: 0 }));
      const stage = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE), judge });
      expect((await stage.handle(env(evs[0]!))).kind).toBe('accepted');
      await expect(stage.handle(env(evs[1]!))).rejects.toMatchObject({ retriable: false });
    } finally {
      await srv.close();
    }
  });
});
