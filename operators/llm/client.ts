/**
 * The LLM client every agent uses: OpenAI-compatible chat completions through the `openai` package (v5),
 * with our own retry policy, a per-endpoint concurrency limit and token/cost accounting per call.
 *
 * ```ts
 * const llm = agentLlm(config.llm, 'statement-writer');      // null → not configured → rule path
 * if (llm) {
 *   const r = await llm.chat({ messages, tools, signal });
 *   r.message.tool_calls; r.tokensIn; r.tokensOut; r.costUsd; r.attempts;
 * }
 * ```
 *
 * Retries belong to the stage runtime (ARCHITECTURE.md §4): the SDK's own retries are off, and the client
 * waits in place only on HTTP 429 whose `retry-after-ms` / `retry-after` (seconds or an HTTP date; RFC 9110
 * §10.2.3) is at most `maxRetryAfterMs` (default 5 s), at most `maxRetries` times (default 2). Every other
 * failure is thrown at once as an {@link LlmError} with `retriable` set — true for 408, 409, 429, 5xx,
 * connection errors and timeouts, false for other 4xx (bad request, auth, not found: they will not heal) —
 * so one failing call is one HTTP request, and the runtime's due-time retry decides when to try again.
 * The concurrency slot is released while waiting, so a rate-limited call does not block others.
 */
import OpenAI from 'openai';
import type {
  ChatCompletionMessage,
  ChatCompletionMessageParam,
  ChatCompletionTool,
  ChatCompletionToolChoiceOption,
} from 'openai/resources/chat/completions';
import { StageError } from '../../streams/types.js';
import { logger, redact } from '../../streams/log.js';
import { resolveAgentConfig, type AgentLlmConfig, type AgentName, type LlmConfig, type LlmConfigInput } from './config.js';

/** OpenAI chat-completions message and tool types, re-exported so agents need not import the SDK's paths. */
export type { ChatCompletionMessage, ChatCompletionMessageParam, ChatCompletionTool };
/** The config schema and agent names (operators/llm/config.ts), re-exported for callers of agentLlm. */
export { llmConfigSchema, AGENT_NAMES, type AgentName, type LlmConfig, type LlmConfigInput, type AgentLlmConfig } from './config.js';

const log = logger({ component: 'llm' });

/** One chat call. `maxTokens`/`temperature` override the agent's config for this call. */
export interface ChatRequest {
  messages: ChatCompletionMessageParam[];
  tools?: ChatCompletionTool[];
  toolChoice?: ChatCompletionToolChoiceOption;
  maxTokens?: number;
  temperature?: number;
  /** `{ type: 'json_object' }` for agents that answer in JSON without tools */
  responseFormat?: { type: 'json_object' | 'text' };
  signal?: AbortSignal;
  /** per-call timeout, ms (default: the agent's timeoutMs) */
  timeoutMs?: number;
}

/** The answer to one chat call, with its accounting. Tokens are the endpoint's `usage` (estimated as chars/4 when it sends none). */
export interface ChatResult {
  message: ChatCompletionMessage;
  finishReason: string;
  /** model name the endpoint reports */
  model: string;
  tokensIn: number;
  tokensOut: number;
  /** USD: (tokensIn − cached)·priceIn/1e6 + cached·priceCachedIn/1e6 + tokensOut·priceOut/1e6 */
  costUsd: number;
  /** input tokens the provider served from its prompt cache (part of tokensIn) */
  cachedTokensIn: number;
  /** true when the endpoint sent no `usage` and tokens were estimated */
  usageEstimated: boolean;
  /** HTTP requests made (1 unless a 429 with a short retry-after was waited out) */
  attempts: number;
  /** wall time including retry-after waits, ms */
  durationMs: number;
}

/** A configured agent endpoint. */
export interface LlmClient {
  readonly agent: AgentName;
  readonly model: string;
  readonly config: AgentLlmConfig;
  /** @throws LlmError at the first failure that is not a short 429 (retriable for 408/409/429/5xx, timeouts and connection errors; not for other 4xx); the abort reason when `signal` aborts */
  chat(req: ChatRequest): Promise<ChatResult>;
}

/** An LLM call that failed; `retriable` tells the stage whether a later attempt may succeed. `status` is the HTTP status when there was one. */
export class LlmError extends StageError {
  constructor(message: string, opts: { retriable: boolean; status?: number; attempts: number; cause?: unknown }) {
    super(message, { retriable: opts.retriable, name: 'LlmError', cause: opts.cause });
    this.status = opts.status;
    this.attempts = opts.attempts;
  }
  readonly status: number | undefined;
  readonly attempts: number;
}

/** A counting semaphore: at most `limit` holders; waiters are served in arrival order. */
class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(public limit: number) {}
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active < this.limit) {
      this.active++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const wake = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(wake);
    });
    this.active++;
    return this.releaser();
  }
  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.active--;
      this.waiters.shift()?.();
    };
  }
}

// One limit per endpoint for the whole process: the endpoint's rate limit is shared by every agent using it.
const endpointLimits = new Map<string, Semaphore>();
function semaphoreFor(baseURL: string, limit: number): Semaphore {
  let s = endpointLimits.get(baseURL);
  if (!s) endpointLimits.set(baseURL, (s = new Semaphore(limit)));
  else if (limit < s.limit) s.limit = limit;
  return s;
}

/** Test hook: in-flight/limit of an endpoint's semaphore, or null when none was created. */
export function endpointConcurrency(baseURL: string): { limit: number } | null {
  const s = endpointLimits.get(baseURL);
  return s ? { limit: s.limit } : null;
}

const RETRIABLE_STATUS = (s: number) => s === 408 || s === 409 || s === 429 || s >= 500;

/**
 * Milliseconds the server asks us to wait, from `retry-after-ms` or `retry-after` (delta-seconds or an
 * HTTP date), or null when absent/unparseable. Source: RFC 9110 §10.2.3; `retry-after-ms` is the OpenAI SDKs' extension.
 */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | null {
  if (!headers) return null;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = headers.get('retry-after');
  if (ra === null || ra.trim() === '') return null;
  if (Number.isFinite(Number(ra))) return Math.max(0, Number(ra) * 1000);
  const date = Date.parse(ra);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Cached prompt tokens as providers report them: OpenAI `usage.prompt_tokens_details.cached_tokens`, DeepSeek
 * `usage.prompt_cache_hit_tokens`. 0 when absent.
 */
function cachedTokens(usage: unknown): number {
  const u = usage as { prompt_tokens_details?: { cached_tokens?: unknown }; prompt_cache_hit_tokens?: unknown } | undefined;
  const v = u?.prompt_tokens_details?.cached_tokens ?? u?.prompt_cache_hit_tokens;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

const warnedKeys = new Set<string>();
const approxTokens = (s: string) => Math.ceil(s.length / 4);

/** Build a client for an already-resolved agent config. The API key is read from `process.env[config.apiKeyEnv]` now. */
export function createLlmClient(agent: AgentName, config: AgentLlmConfig): LlmClient {
  const apiKey = process.env[config.apiKeyEnv];
  if (!apiKey && !warnedKeys.has(config.apiKeyEnv)) {
    warnedKeys.add(config.apiKeyEnv);
    log.warn({ agent, apiKeyEnv: config.apiKeyEnv }, 'API key variable is not set; sending a placeholder key');
  }
  const sdk = new OpenAI({ baseURL: config.baseURL, apiKey: apiKey || 'not-set', maxRetries: 0, timeout: config.timeoutMs });
  const sem = semaphoreFor(config.baseURL, config.concurrency);

  /** One HTTP request: the result, or an LlmError (with `wait` set when a short retry-after allows waiting in place). */
  async function once(req: ChatRequest, attempt: number, started: number): Promise<ChatResult | { error: LlmError; wait: number | null }> {
    const release = await sem.acquire(req.signal);
    try {
      const completion = await sdk.chat.completions.create(
        {
          model: config.model,
          messages: req.messages,
          ...(req.tools?.length ? { tools: req.tools, tool_choice: req.toolChoice ?? 'auto' } : {}),
          temperature: req.temperature ?? config.temperature,
          max_tokens: req.maxTokens ?? config.maxTokens,
          ...(req.responseFormat ? { response_format: req.responseFormat } : {}),
        },
        { signal: req.signal, timeout: req.timeoutMs ?? config.timeoutMs },
      );
      const choice = completion.choices?.[0];
      if (!choice?.message) return { error: new LlmError('response has no choices[0].message', { retriable: true, attempts: attempt }), wait: null };
      const usage = completion.usage;
      const tokensIn = usage?.prompt_tokens ?? approxTokens(JSON.stringify(req.messages));
      const tokensOut = usage?.completion_tokens ?? approxTokens(JSON.stringify(choice.message));
      const cached = Math.min(tokensIn, cachedTokens(usage));
      const costUsd = ((tokensIn - cached) * config.priceInPerMTok + cached * (config.priceCachedInPerMTok ?? config.priceInPerMTok) + tokensOut * config.priceOutPerMTok) / 1e6;
      log.debug({ agent, model: config.model, attempt, tokensIn, cachedTokensIn: cached, tokensOut, costUsd, ms: Date.now() - started }, 'LLM call');
      return {
        message: choice.message,
        finishReason: choice.finish_reason ?? 'stop',
        model: completion.model ?? config.model,
        tokensIn,
        tokensOut,
        costUsd,
        cachedTokensIn: cached,
        usageEstimated: !usage,
        attempts: attempt,
        durationMs: Date.now() - started,
      };
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason ?? err;
      if (err instanceof OpenAI.APIConnectionError) {
        // includes APIConnectionTimeoutError: the network or the server's latency, both transient
        return { error: new LlmError(`${err.name}: ${redact(err.message)}`, { retriable: true, attempts: attempt, cause: err }), wait: null };
      }
      if (err instanceof OpenAI.APIError && typeof err.status === 'number') {
        const error = new LlmError(`HTTP ${err.status}: ${redact(err.message)}`, { retriable: RETRIABLE_STATUS(err.status), status: err.status, attempts: attempt, cause: err });
        const ra = err.status === 429 ? retryAfterMs(err.headers) : null;
        return { error, wait: ra !== null && ra <= config.maxRetryAfterMs ? ra : null };
      }
      throw err; // a bug (e.g. in request building), not an endpoint condition
    } finally {
      release();
    }
  }

  async function chat(req: ChatRequest): Promise<ChatResult> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      const r = await once(req, attempt, started);
      if (!('error' in r)) return r;
      if (r.wait === null || attempt > config.maxRetries) throw r.error;
      log.info({ agent, model: config.model, attempt, waitMs: r.wait, status: r.error.status }, 'LLM rate-limited with a short retry-after; waiting');
      await sleep(r.wait, req.signal);
    }
  }

  return { agent, model: config.model, config, chat };
}

/**
 * The client for one agent, or null when the config does not set it up (no endpoint, or `enabled: false`):
 * the caller then takes its rule-based path. Clients are cached per (agent, effective config).
 * @throws ZodError when the merged config is invalid.
 */
export function agentLlm(config: LlmConfig | LlmConfigInput | null | undefined, agent: AgentName): LlmClient | null {
  const resolved = resolveAgentConfig(config, agent);
  if (!resolved) return null;
  const key = `${agent}\u0000${JSON.stringify(resolved)}`;
  let c = clientCache.get(key);
  if (!c) clientCache.set(key, (c = createLlmClient(agent, resolved)));
  return c;
}
const clientCache = new Map<string, LlmClient>();
