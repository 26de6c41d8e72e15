/**
 * The generic tool-calling agent loop, in the spirit of mini-swe-agent (SWE-agent team, github.com/
 * SWE-agent/mini-swe-agent): one linear message history, the model acts through tools, every observation is
 * appended, the run ends when the model calls `submit` or a budget runs out. Used by the Environment Builder,
 * Unit-test Creator, Problem Statement Writer and solver agents.
 *
 * API
 * ```ts
 * import { runAgent } from './loop.js';
 * const run = await runAgent({
 *   llm,                                   // LlmClient from agentLlm(config, 'environment-builder')
 *   system, user,                          // from renderPrompt('environment-builder', vars)
 *   sandbox, workdir: '/testbed',          // tools bash/read_file/write_file act in it; omit for no sandbox tools
 *   tools: ['bash', 'read_file'],          // subset of the built-ins (default: all three when a sandbox is given)
 *   extraTools: [myTool],                  // AgentTool[]: name, description, JSON-schema parameters, run(args, ctx) → string
 *   submit: {                              // the finishing tool: its JSON schema and an optional harness check
 *     parameters: { type: 'object', properties: { test_command: { type: 'string' } }, required: ['test_command'] },
 *     validate: async (args) => (await harnessAccepts(args)) ? null : 'the tests did not run: …',  // string → told to the model, loop goes on
 *   },
 *   budgets: { maxSteps: 40, maxTokens: 400_000, maxCostUsd: 1, maxWallMs: 20 * 60_000 },
 *   commandTimeoutMs: 300_000,
 *   bashPrefix: 'source /opt/venv/bin/activate',   // optional: prepended to every bash command
 *   temperature: 0.6,                      // optional: overrides the agent's configured temperature
 *   signal: env.signal,
 * });
 * run.exitStatus  // 'submitted' | 'step-limit' | 'token-limit' | 'cost-limit' | 'time-limit' | 'error'
 * run.submission  // the accepted submit arguments (object) or null
 * run.messages    // OpenAI chat messages: system, user, assistant (with tool_calls, and reasoning_content when the model sends it), tool …
 * run.steps, run.tokensIn, run.tokensOut, run.costUsd (USD), run.durationMs, run.error?
 * ```
 *
 * Behaviour that matters to callers:
 * - A step is one model call. Budgets are checked before every call; a run that reaches one ends with that
 *   exit status and `submission: null` (the trajectory is still returned).
 * - Malformed tool calls (invalid JSON, missing/mistyped arguments, unknown tool) and replies with no tool
 *   call are answered with an error message to the model, never a crash (mini-swe-agent's FormatError idea).
 * - `bash` runs `bash -lc` in the sandbox with a timeout (the smaller of `commandTimeoutMs` and the remaining
 *   wall time); output is `<returncode>…</returncode><output>…</output>`, long output keeps head and tail.
 * - LLM errors after the client's retries, and sandbox engine failures, end the run with exitStatus `error` and
 *   `error.retriable` set; the caller decides whether that fails its stage. `signal` aborting throws its reason.
 */
import type { ChatCompletionMessageParam, ChatCompletionTool, ChatCompletionMessageToolCall } from 'openai/resources/chat/completions';
import type { Sandbox } from '../sandbox/types.js';
import type { LlmClient } from '../llm/client.js';
import { logger } from '../../streams/log.js';
import { isRetriable } from '../../streams/types.js';

const log = logger({ component: 'agent-loop' });

/** A JSON schema for tool parameters (the subset our validator checks: object/properties/required/type/items/enum). */
export interface JsonSchema {
  type?: 'object' | 'string' | 'number' | 'integer' | 'boolean' | 'array';
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  additionalProperties?: boolean;
}

/** What a tool sees besides its arguments. */
export interface ToolContext {
  sandbox: Sandbox | null;
  /** shell lines run before every bash command (environment activation) */
  bashPrefix?: string;
  workdir: string;
  /** timeout for a command started now, ms (already capped by the remaining wall time) */
  commandTimeoutMs: number;
  signal?: AbortSignal;
}

/** A tool the model may call. `run` returns the observation text; throwing a ToolInputError reports it to the model, anything else ends the run with `error`. */
export interface AgentTool {
  name: string;
  description: string;
  parameters: JsonSchema;
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<string>;
}

/** Thrown by a tool when the model asked for something impossible (missing file…): the message goes back to the model. */
export class ToolInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolInputError';
  }
}

/** Limits of one run. Units: model calls, tokens (in + out), USD, ms. Only maxSteps is required. */
export interface AgentBudgets {
  maxSteps: number;
  maxTokens?: number;
  maxCostUsd?: number;
  maxWallMs?: number;
}

/** How a run ended; the same vocabulary as Trajectory.exit_status. */
export type ExitStatus = 'submitted' | 'step-limit' | 'token-limit' | 'cost-limit' | 'time-limit' | 'error';

/** The finishing tool: schema of what the agent hands in (`S`) and the harness check that accepts it. */
export interface SubmitSpec<S> {
  description?: string;
  /** JSON schema of the submission (default: `{ summary?: string }`) */
  parameters?: JsonSchema;
  /** Harness check: null accepts; a string rejects and is sent to the model as the tool result, and the loop goes on. Throwing ends the run with `error`. */
  validate?(submission: S, ctx: ToolContext): Promise<string | null> | string | null;
}

/** Tools the loop implements over a Sandbox. */
export type BuiltinToolName = 'bash' | 'read_file' | 'write_file';

/** Input of {@link runAgent}; see the file comment for an example. */
export interface RunAgentOptions<S> {
  llm: LlmClient;
  system: string;
  user: string;
  sandbox?: Sandbox | null;
  /** working directory for bash and relative paths (default `/`) */
  workdir?: string;
  /** built-in tools to offer (default: all three when a sandbox is given, none otherwise) */
  tools?: BuiltinToolName[];
  extraTools?: AgentTool[];
  submit?: SubmitSpec<S>;
  budgets: AgentBudgets;
  /** prepended to every bash command (e.g. the task's pre_commands: `source /opt/venv/bin/activate`), joined by a newline */
  bashPrefix?: string;
  /** per bash command, ms (default 120 000) */
  commandTimeoutMs?: number;
  /** sampling temperature for this run (default: the agent's configured one) */
  temperature?: number;
  /** observation cap in characters (default 10 000: mini-swe-agent's default truncation point) */
  maxObservationChars?: number;
  signal?: AbortSignal;
}

/** What a run returns: how it ended, the accepted submission, the trajectory and its cost (tokens, USD, ms). */
export interface AgentRunResult<S> {
  exitStatus: ExitStatus;
  submission: S | null;
  messages: ChatCompletionMessageParam[];
  /** model calls made */
  steps: number;
  tokensIn: number;
  tokensOut: number;
  costUsd: number;
  durationMs: number;
  /** model name reported by the endpoint (the configured one before the first reply) */
  model: string;
  /** set when exitStatus is `error` */
  error?: { name: string; message: string; retriable: boolean };
}

/**
 * Check `value` against `schema`; returns a list of problems (empty = valid). Only what tool schemas use:
 * types, required, enum, array items, no extra properties when `additionalProperties: false`.
 */
export function validateArgs(value: unknown, schema: JsonSchema, path = 'arguments'): string[] {
  const errs: string[] = [];
  const t = schema.type;
  const typeOk =
    t === undefined ||
    (t === 'object' && typeof value === 'object' && value !== null && !Array.isArray(value)) ||
    (t === 'array' && Array.isArray(value)) ||
    (t === 'string' && typeof value === 'string') ||
    (t === 'boolean' && typeof value === 'boolean') ||
    (t === 'number' && typeof value === 'number' && Number.isFinite(value)) ||
    (t === 'integer' && typeof value === 'number' && Number.isInteger(value));
  if (!typeOk) return [`${path} must be ${t === 'integer' || t === 'array' || t === 'object' ? 'an' : 'a'} ${t}`];
  if (schema.enum && !schema.enum.includes(value)) errs.push(`${path} must be one of ${JSON.stringify(schema.enum)}`);
  if (t === 'object') {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (obj[r] === undefined || obj[r] === null) errs.push(`${path}.${r} is required`);
    for (const [k, v] of Object.entries(obj)) {
      const ps = schema.properties?.[k];
      if (ps) { if (v !== undefined && v !== null) errs.push(...validateArgs(v, ps, `${path}.${k}`)); }
      else if (schema.additionalProperties === false) errs.push(`${path}.${k} is not a known argument`);
    }
  }
  if (t === 'array' && schema.items) (value as unknown[]).forEach((v, i) => errs.push(...validateArgs(v, schema.items!, `${path}[${i}]`)));
  return errs;
}

/** Keep head and tail of a long observation (mini-swe-agent shows both ends with a warning in between). */
export function truncateObservation(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const half = Math.floor(maxChars / 2);
  return `${text.slice(0, half)}\n\n[… ${text.length - 2 * half} characters elided; narrow the command (head, tail, grep, sed -n) to see them …]\n\n${text.slice(-half)}`;
}

function resolvePath(workdir: string, p: string): string {
  if (p.startsWith('/')) return p;
  return `${workdir.replace(/\/+$/, '')}/${p.replace(/^\.\//, '')}`;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The built-in tools over a Sandbox. */
export const BUILTIN_TOOLS: Record<BuiltinToolName, AgentTool> = {
  bash: {
    name: 'bash',
    description:
      'Run a bash command (bash -lc) in the working directory and return its exit code and combined output. ' +
      'Each call is a new shell: cd and exports do not persist. Commands have a timeout; avoid interactive programs.',
    parameters: { type: 'object', properties: { command: { type: 'string', description: 'the command line' } }, required: ['command'] },
    async run(args, ctx) {
      if (!ctx.sandbox) throw new ToolInputError('no sandbox available');
      const script = ctx.bashPrefix ? `${ctx.bashPrefix}\n${String(args.command)}` : String(args.command);
      const r = await ctx.sandbox.exec(script, { timeoutMs: ctx.commandTimeoutMs, cwd: ctx.workdir, signal: ctx.signal });
      const out = r.stdout + (r.stderr ? (r.stdout ? '\n' : '') + r.stderr : '');
      const note = r.timedOut ? `\n[the command was killed after ${ctx.commandTimeoutMs} ms]` : r.truncated ? '\n[output was cut by the sandbox]' : '';
      return `<returncode>${r.exitCode}</returncode>\n<output>\n${out}${note}\n</output>`;
    },
  },
  read_file: {
    name: 'read_file',
    description: 'Read a text file (path relative to the working directory or absolute). Optional 1-based line range.',
    parameters: {
      type: 'object',
      properties: { path: { type: 'string' }, start_line: { type: 'integer' }, end_line: { type: 'integer' } },
      required: ['path'],
    },
    async run(args, ctx) {
      if (!ctx.sandbox) throw new ToolInputError('no sandbox available');
      const path = resolvePath(ctx.workdir, String(args.path));
      let buf: Buffer;
      try {
        buf = await ctx.sandbox.readFile(path);
      } catch (e) {
        if ((e as { retriable?: boolean }).retriable === false) throw new ToolInputError(`cannot read ${path}: ${(e as Error).message}`);
        throw e;
      }
      const text = buf.toString('utf8');
      if (args.start_line === undefined && args.end_line === undefined) return text;
      const lines = text.split('\n');
      const s = Math.max(1, Number(args.start_line ?? 1));
      const e = Math.min(lines.length, Number(args.end_line ?? lines.length));
      return lines.slice(s - 1, e).map((l, i) => `${s + i}\t${l}`).join('\n');
    },
  },
  write_file: {
    name: 'write_file',
    description: 'Create or overwrite a text file with the given content (parent directories are created).',
    parameters: { type: 'object', properties: { path: { type: 'string' }, content: { type: 'string' } }, required: ['path', 'content'] },
    async run(args, ctx) {
      if (!ctx.sandbox) throw new ToolInputError('no sandbox available');
      const path = resolvePath(ctx.workdir, String(args.path));
      const dir = path.slice(0, path.lastIndexOf('/')) || '/';
      const mk = await ctx.sandbox.exec(`mkdir -p ${shellQuote(dir)}`, { timeoutMs: Math.min(ctx.commandTimeoutMs, 30_000), signal: ctx.signal });
      if (mk.exitCode !== 0) throw new ToolInputError(`cannot create ${dir}: ${mk.stderr.trim()}`);
      await ctx.sandbox.writeFile(path, String(args.content));
      return `wrote ${Buffer.byteLength(String(args.content))} bytes to ${path}`;
    },
  },
};

const DEFAULT_SUBMIT_SCHEMA: JsonSchema = { type: 'object', properties: { summary: { type: 'string', description: 'what you did' } } };

/**
 * The history as sent to the model: without `reasoning_content`, which DeepSeek's API rejects in input messages
 * (api-docs.deepseek.com, "Reasoning Model": "if reasoning_content is included in the input … 400 error").
 */
function forModel(messages: ChatCompletionMessageParam[]): ChatCompletionMessageParam[] {
  return messages.map((m) => {
    if (m.role !== 'assistant' || !('reasoning_content' in m)) return m;
    const { reasoning_content: _dropped, ...rest } = m as ChatCompletionMessageParam & { reasoning_content?: string };
    return rest as ChatCompletionMessageParam;
  });
}

function errorInfo(e: unknown): { name: string; message: string; retriable: boolean } {
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, message: err.message, retriable: isRetriable(e) };
}

/**
 * Run the loop to submission or a budget. Never throws for model misbehaviour, LLM or sandbox errors (see
 * `exitStatus: 'error'`); throws the abort reason when `signal` aborts.
 */
export async function runAgent<S = Record<string, unknown>>(opts: RunAgentOptions<S>): Promise<AgentRunResult<S>> {
  const started = Date.now();
  const sandbox = opts.sandbox ?? null;
  const workdir = opts.workdir ?? '/';
  const maxObs = opts.maxObservationChars ?? 10_000;
  const cmdTimeout = opts.commandTimeoutMs ?? 120_000;
  const builtins = opts.tools ?? (sandbox ? (['bash', 'read_file', 'write_file'] as BuiltinToolName[]) : []);
  const tools = new Map<string, AgentTool>();
  for (const b of builtins) tools.set(b, BUILTIN_TOOLS[b]);
  for (const t of opts.extraTools ?? []) tools.set(t.name, t);
  const submitSchema = opts.submit?.parameters ?? DEFAULT_SUBMIT_SCHEMA;
  const toolDefs: ChatCompletionTool[] = [
    ...[...tools.values()].map((t) => ({ type: 'function' as const, function: { name: t.name, description: t.description, parameters: t.parameters as Record<string, unknown> } })),
    {
      type: 'function',
      function: {
        name: 'submit',
        description: opts.submit?.description ?? 'Finish the task and hand in your result. Call it once, when you are done.',
        parameters: submitSchema as Record<string, unknown>,
      },
    },
  ];
  const toolNames = toolDefs.map((t) => (t as { function: { name: string } }).function.name);

  const messages: ChatCompletionMessageParam[] = [
    { role: 'system', content: opts.system },
    { role: 'user', content: opts.user },
  ];
  const res: AgentRunResult<S> = {
    exitStatus: 'step-limit',
    submission: null,
    messages,
    steps: 0,
    tokensIn: 0,
    tokensOut: 0,
    costUsd: 0,
    durationMs: 0,
    model: opts.llm.model,
  };
  const b = opts.budgets;
  const remaining = () => (b.maxWallMs === undefined ? Infinity : b.maxWallMs - (Date.now() - started));
  const finish = (status: ExitStatus, error?: unknown): AgentRunResult<S> => {
    res.exitStatus = status;
    if (error !== undefined) res.error = errorInfo(error);
    res.durationMs = Date.now() - started;
    log.debug({ agent: opts.llm.agent, exitStatus: status, steps: res.steps, tokensIn: res.tokensIn, tokensOut: res.tokensOut }, 'agent run ended');
    return res;
  };

  for (;;) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (res.steps >= b.maxSteps) return finish('step-limit');
    if (b.maxTokens !== undefined && res.tokensIn + res.tokensOut >= b.maxTokens) return finish('token-limit');
    if (b.maxCostUsd !== undefined && res.costUsd >= b.maxCostUsd) return finish('cost-limit');
    if (remaining() <= 0) return finish('time-limit');

    // The wall-time budget also bounds a call in flight: abort it at the deadline.
    const wall = Number.isFinite(remaining()) ? AbortSignal.timeout(Math.max(1, remaining())) : undefined;
    const signals = [opts.signal, wall].filter((s): s is AbortSignal => !!s);
    const callSignal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    let reply;
    try {
      reply = await opts.llm.chat({ messages: forModel(messages), tools: toolDefs, signal: callSignal, temperature: opts.temperature });
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (wall?.aborted) return finish('time-limit');
      return finish('error', e);
    }
    res.steps++;
    res.tokensIn += reply.tokensIn;
    res.tokensOut += reply.tokensOut;
    res.costUsd += reply.costUsd;
    res.model = reply.model;
    const msg = reply.message;
    const calls = (msg.tool_calls ?? []).filter((c): c is Extract<ChatCompletionMessageToolCall, { type: 'function' }> => c.type === 'function');
    const reasoning = (msg as { reasoning_content?: unknown }).reasoning_content;
    messages.push({
      role: 'assistant',
      content: msg.content ?? null,
      ...(calls.length ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.function.name, arguments: c.function.arguments } })) } : {}),
      // kept in the trajectory (distillation wants the reasoning), stripped from what goes back to the model
      ...(typeof reasoning === 'string' && reasoning ? { reasoning_content: reasoning } : {}),
    } as ChatCompletionMessageParam);
    if (calls.length === 0) {
      const cut = reply.finishReason === 'length' ? ' Your reply was cut off by the token limit; be shorter.' : '';
      messages.push({
        role: 'user',
        content: `Your reply contained no tool call.${cut} Act only through the tools (${toolNames.join(', ')}); call submit when you are done.`,
      });
      continue;
    }

    let submitted = false;
    for (const call of calls) {
      const name = call.function.name;
      // Every tool_call_id must be answered before the next model call (chat-completions protocol), even after a submit.
      const answer = (content: string) => messages.push({ role: 'tool', tool_call_id: call.id, content });
      if (submitted) {
        answer('ignored: the task was already submitted');
        continue;
      }
      let args: unknown;
      try {
        args = call.function.arguments.trim() === '' ? {} : JSON.parse(call.function.arguments);
      } catch (e) {
        answer(`Error: the arguments of ${name} are not valid JSON (${(e as Error).message}). Send a JSON object matching the tool's parameters.`);
        continue;
      }
      const schema = name === 'submit' ? submitSchema : tools.get(name)?.parameters;
      if (!schema) {
        answer(`Error: there is no tool named ${JSON.stringify(name)}. Available tools: ${toolNames.join(', ')}.`);
        continue;
      }
      const problems = validateArgs(args, schema);
      if (problems.length) {
        answer(`Error: invalid arguments for ${name}: ${problems.join('; ')}.`);
        continue;
      }
      const ctx: ToolContext = { sandbox, workdir, bashPrefix: opts.bashPrefix, commandTimeoutMs: Math.max(1, Math.min(cmdTimeout, remaining())), signal: opts.signal };
      if (name === 'submit') {
        let verdict: string | null;
        try {
          verdict = opts.submit?.validate ? await opts.submit.validate(args as S, ctx) : null;
        } catch (e) {
          if (opts.signal?.aborted) throw opts.signal.reason;
          answer(`Error: the submission could not be checked: ${(e as Error).message}`);
          return finish('error', e);
        }
        if (verdict === null) {
          answer('Submission accepted.');
          res.submission = args as S;
          submitted = true;
        } else {
          answer(`Submission rejected: ${verdict}`);
        }
        continue;
      }
      try {
        answer(truncateObservation(await tools.get(name)!.run(args as Record<string, unknown>, ctx), maxObs));
      } catch (e) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (e instanceof ToolInputError) {
          answer(`Error: ${e.message}`);
          continue;
        }
        answer(`Error: the tool failed: ${(e as Error).message}`);
        return finish('error', e);
      }
    }
    if (submitted) return finish('submitted');
  }
}
