import { afterEach, describe, expect, it } from 'vitest';
import { startChatServer, type ChatServer } from '../../helpers/chat-server.js';
import { agentLlm, createLlmClient, LlmError, retryAfterMs, type AgentLlmConfig } from '../../../operators/llm/client.js';
import { agentLlmSchema, llmConfigSchema, resolveAgentConfig } from '../../../operators/llm/config.js';
import { loadPrompt, renderPrompt, renderTemplate } from '../../../operators/llm/prompts.js';
import { AGENT_NAMES } from '../../../operators/llm/config.js';

let srv: ChatServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

const cfg = (baseURL: string, over: Partial<AgentLlmConfig> = {}): AgentLlmConfig =>
  agentLlmSchema.parse({ baseURL, model: 'test-model', apiKeyEnv: 'SWE_STREAM_TEST_KEY', ...over });

const msgs = [{ role: 'user' as const, content: 'hello' }];

describe('llm client', () => {
  it('returns the reply with tokens and cost from usage', async () => {
    srv = await startChatServer([{ content: 'hi', usage: { prompt_tokens: 1_000, completion_tokens: 500 } }]);
    const llm = createLlmClient('solver', cfg(srv.baseURL, { priceInPerMTok: 2, priceOutPerMTok: 8, temperature: 0.3, maxTokens: 77 }));
    const r = await llm.chat({ messages: msgs });
    expect(r.message.content).toBe('hi');
    expect(r.tokensIn).toBe(1_000);
    expect(r.tokensOut).toBe(500);
    expect(r.costUsd).toBeCloseTo((1_000 * 2 + 500 * 8) / 1e6, 12);
    expect(r.attempts).toBe(1);
    expect(r.usageEstimated).toBe(false);
    const body = srv.requests[0]!.body;
    expect(body.model).toBe('test-model');
    expect(body.temperature).toBe(0.3);
    expect(body.max_tokens).toBe(77);
  });

  it('sends the key from the configured variable as a bearer token', async () => {
    process.env.SWE_STREAM_TEST_KEY_OK = 'sk-test-0123456789abcdef';
    srv = await startChatServer([{ content: 'ok' }]);
    await createLlmClient('judge', cfg(srv.baseURL, { apiKeyEnv: 'SWE_STREAM_TEST_KEY_OK' })).chat({ messages: msgs });
    expect(srv.requests[0]!.headers.authorization).toBe('Bearer sk-test-0123456789abcdef');
    delete process.env.SWE_STREAM_TEST_KEY_OK;
  });

  it('prices cached prompt tokens (OpenAI and DeepSeek usage shapes)', async () => {
    srv = await startChatServer([
      { content: 'a', usage: { prompt_tokens: 1_000, completion_tokens: 0, prompt_tokens_details: { cached_tokens: 800 } } },
      { content: 'b', usage: { prompt_tokens: 1_000, completion_tokens: 0, prompt_cache_hit_tokens: 500 } },
    ]);
    const llm = createLlmClient('solver', cfg(srv.baseURL, { priceInPerMTok: 1, priceCachedInPerMTok: 0.1, priceOutPerMTok: 2 }));
    const a = await llm.chat({ messages: msgs });
    expect(a.cachedTokensIn).toBe(800);
    expect(a.costUsd).toBeCloseTo((200 * 1 + 800 * 0.1) / 1e6, 12);
    const b = await llm.chat({ messages: msgs });
    expect(b.costUsd).toBeCloseTo((500 * 1 + 500 * 0.1) / 1e6, 12);
  });

  it('waits out a 429 with a short retry-after in place, then succeeds', async () => {
    srv = await startChatServer([{ status: 429, retryAfter: 0 }, { status: 429, retryAfterMs: 20 }, { content: 'ok' }]);
    const r = await createLlmClient('solver', cfg(srv.baseURL)).chat({ messages: msgs });
    expect(r.message.content).toBe('ok');
    expect(r.attempts).toBe(3);
    expect(srv.requests).toHaveLength(3);
  });

  it('throws a 5xx at once as retriable: the runtime owns retries', async () => {
    srv = await startChatServer([{ status: 500 }, { content: 'never' }]);
    const err = await createLlmClient('solver', cfg(srv.baseURL)).chat({ messages: msgs }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect((err as LlmError).retriable).toBe(true);
    expect((err as LlmError).status).toBe(500);
    expect((err as LlmError).attempts).toBe(1);
    expect(srv.requests).toHaveLength(1);
  });

  it('throws a 429 whose retry-after is longer than maxRetryAfterMs (or missing) without waiting', async () => {
    srv = await startChatServer([{ status: 429, retryAfter: 30 }, { status: 429 }, { content: 'never' }]);
    const llm = createLlmClient('solver', cfg(srv.baseURL, { maxRetryAfterMs: 2_000 }));
    const t0 = Date.now();
    for (let i = 0; i < 2; i++) {
      const err = await llm.chat({ messages: msgs }).catch((e: unknown) => e);
      expect((err as LlmError).status).toBe(429);
      expect((err as LlmError).retriable).toBe(true);
    }
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(srv.requests).toHaveLength(2);
  });

  it('does not retry a 400 and reports it as not retriable', async () => {
    srv = await startChatServer([{ status: 400, message: 'bad' }, { content: 'never' }]);
    const err = await createLlmClient('solver', cfg(srv.baseURL)).chat({ messages: msgs }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect((err as LlmError).retriable).toBe(false);
    expect((err as LlmError).status).toBe(400);
    expect(srv.requests).toHaveLength(1);
  });

  it('stops waiting on 429s after maxRetries and throws the 429 as retriable', async () => {
    srv = await startChatServer([], { fallback: { status: 429, retryAfter: 0 } });
    const err = await createLlmClient('solver', cfg(srv.baseURL, { maxRetries: 2 })).chat({ messages: msgs }).catch((e: unknown) => e);
    expect((err as LlmError).retriable).toBe(true);
    expect((err as LlmError).attempts).toBe(3);
    expect(srv.requests).toHaveLength(3);
  });

  it('throws a request that times out as retriable, without a second request', async () => {
    srv = await startChatServer([{ content: 'slow', delayMs: 60_000 }, { content: 'fast' }]);
    const err = await createLlmClient('solver', cfg(srv.baseURL, { timeoutMs: 1_000 })).chat({ messages: msgs }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect((err as LlmError).retriable).toBe(true);
    expect(srv.requests).toHaveLength(1);
  });

  it('estimates tokens when the endpoint sends no usage', async () => {
    srv = await startChatServer([{ content: 'x'.repeat(40), usage: null }]);
    const r = await createLlmClient('solver', cfg(srv.baseURL)).chat({ messages: msgs });
    expect(r.usageEstimated).toBe(true);
    expect(r.tokensOut).toBeGreaterThan(0);
  });

  it('limits concurrent requests per endpoint', async () => {
    let inflight = 0;
    let peak = 0;
    const entry = async () => {
      inflight++;
      peak = Math.max(peak, inflight);
      await new Promise((r) => setTimeout(r, 30));
      inflight--;
      return { content: 'ok' };
    };
    srv = await startChatServer([], { fallback: entry });
    const llm = createLlmClient('classifier', cfg(srv.baseURL, { concurrency: 2 }));
    await Promise.all(Array.from({ length: 6 }, () => llm.chat({ messages: msgs })));
    expect(srv.requests).toHaveLength(6);
    expect(peak).toBeLessThanOrEqual(2);
  });

  it('aborts with the signal', async () => {
    srv = await startChatServer([{ content: 'slow', delayMs: 5_000 }]);
    const ac = new AbortController();
    const p = createLlmClient('solver', cfg(srv.baseURL)).chat({ messages: msgs, signal: ac.signal });
    ac.abort(new Error('revoked'));
    await expect(p).rejects.toThrow('revoked');
  });
});

describe('retry helpers', () => {
  it('parses retry-after forms', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '150', 'retry-after': '9' }))).toBe(150);
    expect(retryAfterMs(new Headers({ 'retry-after': new Date(10_000).toUTCString() }), 4_000)).toBe(6_000);
    expect(retryAfterMs(new Headers({}))).toBeNull();
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }))).toBeNull();
  });
});

describe('llm config', () => {
  it('merges defaults with per-agent overrides; unconfigured or disabled agents get null', () => {
    const c = llmConfigSchema.parse({
      default: { baseURL: 'http://127.0.0.1:1/v1', model: 'm1', priceInPerMTok: 1 },
      agents: { solver: { model: 'm2', temperature: 0.7 }, judge: { enabled: false } },
    });
    expect(resolveAgentConfig(c, 'solver')).toMatchObject({ model: 'm2', temperature: 0.7, priceInPerMTok: 1 });
    expect(resolveAgentConfig(c, 'classifier')).toMatchObject({ model: 'm1', temperature: 0 });
    expect(agentLlm(c, 'judge')).toBeNull();
    expect(agentLlm(null, 'solver')).toBeNull();
    expect(agentLlm(llmConfigSchema.parse({ agents: { solver: { model: 'x' } } }), 'solver')).toBeNull();
    expect(agentLlm(c, 'solver')?.model).toBe('m2');
    expect(() => llmConfigSchema.parse({ agents: { nobody: {} } })).toThrow();
    // raw (unparsed) input is accepted and validated on resolution
    expect(agentLlm({ default: { baseURL: 'http://127.0.0.1:1/v1', model: 'raw' } }, 'judge')?.model).toBe('raw');
    expect(() => agentLlm({ default: { baseURL: 'not a url', model: 'raw' } }, 'judge')).toThrow();
  });
});

describe('prompts', () => {
  it('every agent has a versioned prompt with system and user sections', () => {
    for (const a of AGENT_NAMES) {
      const p = loadPrompt(a);
      expect(p.version).toMatch(new RegExp(`^${a}\\.v\\d+$`));
      expect(p.system.length).toBeGreaterThan(50);
      expect(p.user.length).toBeGreaterThan(10);
    }
  });
  it('renders placeholders and refuses missing ones', () => {
    expect(renderTemplate('a {{x}} b {{ y }}', { x: 1, y: '{{x}}' })).toBe('a 1 b {{x}}');
    expect(() => renderTemplate('a {{x}}', {})).toThrow('{{x}}');
    expect(() => renderPrompt('solver', {})).toThrow(/placeholder/);
  });
});
