/**
 * A real, scripted chat-completions server for tests (node:http on 127.0.0.1, random port). Agents reach
 * it through the `openai` client exactly as they reach a production endpoint, so tests exercise the real
 * wire protocol: request bodies, tool calls, usage, HTTP error statuses and `retry-after` headers.
 *
 * Protocol source: OpenAI chat-completions API (`POST /v1/chat/completions`, non-streaming), response
 * object `chat.completion` with `choices[0].message.{content, tool_calls}`, `finish_reason` and `usage`.
 *
 * ```ts
 * const srv = await startChatServer([
 *   { toolCalls: [{ name: 'bash', arguments: { command: 'ls' } }], usage: { prompt_tokens: 100, completion_tokens: 20 } },
 *   { status: 429, retryAfter: 0 },                       // one rate-limit, then…
 *   (req) => ({ toolCalls: [{ name: 'submit', arguments: { summary: String(req.messages.length) } }] }),
 * ]);
 * const client = new OpenAI({ baseURL: srv.baseURL, apiKey: 'test' });
 * … srv.requests[0].body.messages …
 * await srv.close();
 * ```
 *
 * Each request consumes the next script entry; when the script is exhausted the `fallback` entry answers
 * (default: HTTP 400 "script exhausted", which the client does not retry, so a test that asks for more
 * replies than it scripted fails loudly instead of hanging).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One tool call the scripted model makes; `arguments` may be an object (JSON-encoded for you) or a raw string (to send malformed JSON). */
export interface ScriptToolCall {
  name: string;
  arguments: unknown;
  id?: string;
}

/** Token usage reported in the response (`usage`); when omitted, chars/4 of the request and reply are reported. */
export interface ScriptUsage {
  prompt_tokens: number;
  completion_tokens: number;
  /** OpenAI's cache report */
  prompt_tokens_details?: { cached_tokens: number };
  /** DeepSeek's cache report */
  prompt_cache_hit_tokens?: number;
}

/** A successful assistant reply. */
export interface ScriptReply {
  content?: string | null;
  toolCalls?: ScriptToolCall[];
  usage?: ScriptUsage | null;
  finishReason?: 'stop' | 'tool_calls' | 'length' | 'content_filter';
  /** `message.reasoning_content`, as DeepSeek's reasoner (and vLLM's reasoning parsers) send it */
  reasoning?: string;
  /** wait this long (ms) before answering, e.g. to trigger a client timeout */
  delayMs?: number;
}

/** An HTTP error answer (429, 500, 401…), with an optional `retry-after` in seconds (may be fractional). */
export interface ScriptError {
  status: number;
  retryAfter?: number;
  /** `retry-after-ms` header, as some OpenAI-compatible servers send */
  retryAfterMs?: number;
  message?: string;
  delayMs?: number;
}

/** A request as received, parsed. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: ChatRequestBody;
}

/** The subset of the chat-completions request body tests look at. */
export interface ChatRequestBody {
  model: string;
  messages: Array<{ role: string; content?: unknown; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>; tool_call_id?: string }>;
  tools?: Array<{ type: string; function: { name: string; description?: string; parameters?: unknown } }>;
  temperature?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  [k: string]: unknown;
}

/** A script entry: a reply, an error, or a function of the request (and its 0-based index) that returns one. */
export type ScriptEntry = ScriptReply | ScriptError | ((req: ChatRequestBody, index: number) => ScriptReply | ScriptError | Promise<ScriptReply | ScriptError>);

/** A running scripted server. */
export interface ChatServer {
  /** e.g. http://127.0.0.1:40123/v1 — pass as `baseURL` to the openai client */
  baseURL: string;
  /** every request received, in order (including the ones answered with errors) */
  requests: RecordedRequest[];
  /** append more entries to the script */
  push(...entries: ScriptEntry[]): void;
  close(): Promise<void>;
}

/** Options of {@link startChatServer}. */
export interface ChatServerOptions {
  /** answers every request after the script is exhausted (e.g. a model that never submits) */
  fallback?: ScriptEntry;
  /** model name echoed in responses (default: the request's model) */
  model?: string;
}

const isError = (e: ScriptReply | ScriptError): e is ScriptError => typeof (e as ScriptError).status === 'number';

function approxTokens(s: string): number {
  return Math.max(1, Math.ceil(s.length / 4));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text).toString(), ...headers });
  res.end(text);
}

/** Start the server. Resolves once it listens. */
export async function startChatServer(script: ScriptEntry[], opts: ChatServerOptions = {}): Promise<ChatServer> {
  const queue = [...script];
  const requests: RecordedRequest[] = [];
  let counter = 0;
  const pending = new Set<NodeJS.Timeout>();
  const delay = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => { pending.delete(t); resolve(); }, ms);
      pending.add(t);
    });

  const server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const path = (req.url ?? '').split('?')[0] ?? '';
      if (req.method !== 'POST' || !path.endsWith('/chat/completions')) {
        send(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error' } });
        return;
      }
      let body: ChatRequestBody;
      try {
        body = JSON.parse(raw) as ChatRequestBody;
      } catch {
        send(res, 400, { error: { message: 'invalid JSON body', type: 'invalid_request_error' } });
        return;
      }
      const index = requests.length;
      requests.push({ method: req.method, path, headers: req.headers, body });
      const entry = queue.length > 0 ? queue.shift()! : opts.fallback;
      if (!entry) {
        send(res, 400, { error: { message: `chat-server: script exhausted at request ${index}`, type: 'invalid_request_error' } });
        return;
      }
      const resolved = typeof entry === 'function' ? await entry(body, index) : entry;
      if (resolved.delayMs) await delay(resolved.delayMs);
      if (res.destroyed || !res.writable) return; // the client gave up (timeout/abort)
      if (isError(resolved)) {
        const headers: Record<string, string> = {};
        if (resolved.retryAfter !== undefined) headers['retry-after'] = String(resolved.retryAfter);
        if (resolved.retryAfterMs !== undefined) headers['retry-after-ms'] = String(resolved.retryAfterMs);
        send(res, resolved.status, { error: { message: resolved.message ?? `scripted ${resolved.status}`, type: resolved.status === 429 ? 'rate_limit_error' : 'server_error' } }, headers);
        return;
      }
      const toolCalls = (resolved.toolCalls ?? []).map((tc) => ({
        id: tc.id ?? `call_${++counter}`,
        type: 'function' as const,
        function: { name: tc.name, arguments: typeof tc.arguments === 'string' ? tc.arguments : JSON.stringify(tc.arguments ?? {}) },
      }));
      const content = resolved.content ?? null;
      const usage =
        resolved.usage === null
          ? undefined
          : resolved.usage ?? {
              prompt_tokens: approxTokens(JSON.stringify(body.messages)),
              completion_tokens: approxTokens((content ?? '') + JSON.stringify(toolCalls)),
            };
      send(res, 200, {
        id: `chatcmpl-${index}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: opts.model ?? body.model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content,
              ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
              ...(resolved.reasoning !== undefined ? { reasoning_content: resolved.reasoning } : {}),
              refusal: null,
            },
            finish_reason: resolved.finishReason ?? (toolCalls.length ? 'tool_calls' : 'stop'),
            logprobs: null,
          },
        ],
        ...(usage ? { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } } : {}),
      });
    })().catch((err: unknown) => {
      // A bug in a scripted function must surface in the test, not hang the client: answer 400 (not retried).
      if (!res.headersSent) send(res, 400, { error: { message: `chat-server: script error: ${String(err)}`, type: 'invalid_request_error' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    push: (...entries) => { queue.push(...entries); },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const t of pending) clearTimeout(t);
        pending.clear();
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
