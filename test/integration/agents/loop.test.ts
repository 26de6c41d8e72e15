import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { startChatServer, type ChatServer, type ScriptEntry } from '../../helpers/chat-server.js';
import { createLocalSandbox, type LocalSandbox } from '../../helpers/local-sandbox.js';
import { createLlmClient } from '../../../operators/llm/client.js';
import { agentLlmSchema } from '../../../operators/llm/config.js';
import { runAgent, validateArgs, truncateObservation, ToolInputError, type RunAgentOptions, type AgentTool } from '../../../operators/agents/loop.js';

let srv: ChatServer | undefined;
let sb: LocalSandbox;
beforeEach(async () => {
  sb = await createLocalSandbox('/testbed');
});
afterEach(async () => {
  await srv?.close();
  srv = undefined;
  await sb.destroy();
});

async function run(script: ScriptEntry[], over: Partial<RunAgentOptions<Record<string, unknown>>> = {}, fallback?: ScriptEntry) {
  srv = await startChatServer(script, { fallback });
  const llm = createLlmClient(
    'solver',
    agentLlmSchema.parse({ baseURL: srv.baseURL, model: 'scripted', priceInPerMTok: 1, priceOutPerMTok: 2 }),
  );
  return runAgent({ llm, system: 'sys', user: 'fix it', sandbox: sb, workdir: '/testbed', budgets: { maxSteps: 10 }, ...over });
}

const call = (name: string, args: unknown) => ({ toolCalls: [{ name, arguments: args }], usage: { prompt_tokens: 100, completion_tokens: 10 } });

describe('agent loop against the scripted chat server', () => {
  it('runs bash, write_file and read_file in the sandbox, then submits', async () => {
    const r = await run([
      call('write_file', { path: 'src/a.py', content: 'print(41 + 1)\n' }),
      call('bash', { command: 'python3 src/a.py && echo done >&2 && exit 3' }),
      call('read_file', { path: 'src/a.py' }),
      call('submit', { summary: 'wrote a.py' }),
    ]);
    expect(r.exitStatus).toBe('submitted');
    expect(r.submission).toEqual({ summary: 'wrote a.py' });
    expect(r.steps).toBe(4);
    expect(r.tokensIn).toBe(400);
    expect(r.tokensOut).toBe(40);
    expect(r.costUsd).toBeCloseTo((400 * 1 + 40 * 2) / 1e6, 12);
    expect(await readFile(sb.hostPath('/testbed/src/a.py'), 'utf8')).toBe('print(41 + 1)\n');
    const tools = r.messages.filter((m) => m.role === 'tool').map((m) => String(m.content));
    expect(tools[1]).toContain('<returncode>3</returncode>');
    expect(tools[1]).toContain('42');
    expect(tools[1]).toContain('done');
    expect(tools[2]).toBe('print(41 + 1)\n');
    // the model saw the tool results of earlier calls (OpenAI message format round trip)
    const last = srv!.requests.at(-1)!.body;
    expect(last.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'tool', 'assistant', 'tool']);
    expect(last.tools?.map((t) => t.function.name)).toEqual(['bash', 'read_file', 'write_file', 'submit']);
    const assistant = r.messages[2] as { tool_calls: Array<{ id: string }> };
    expect((r.messages[3] as { tool_call_id: string }).tool_call_id).toBe(assistant.tool_calls[0]!.id);
  });

  it('offers extra tools, with the chosen subset of built-ins; a ToolInputError goes back to the model', async () => {
    const lookup: AgentTool = {
      name: 'lookup_issue',
      description: 'Fetch an issue by number',
      parameters: { type: 'object', properties: { number: { type: 'integer' } }, required: ['number'] },
      async run(args) {
        if (args.number !== 7) throw new ToolInputError(`issue #${String(args.number)} does not exist`);
        return 'Issue #7: sliced() accepts negative n';
      },
    };
    const r = await run([call('lookup_issue', { number: 8 }), call('lookup_issue', { number: 7 }), call('submit', {})], { tools: ['read_file'], extraTools: [lookup] });
    expect(r.exitStatus).toBe('submitted');
    expect(srv!.requests[0]!.body.tools?.map((t) => t.function.name)).toEqual(['read_file', 'lookup_issue', 'submit']);
    const obs = r.messages.filter((m) => m.role === 'tool').map((m) => String(m.content));
    expect(obs.slice(0, 2)).toEqual(['Error: issue #8 does not exist', 'Issue #7: sliced() accepts negative n']);
  });

  it('keeps reasoning_content in the trajectory but never sends it back', async () => {
    const r = await run([
      { ...call('bash', { command: 'true' }), reasoning: 'Let me check the tree first.' },
      call('submit', {}),
    ]);
    expect(r.exitStatus).toBe('submitted');
    expect(r.messages[2]).toMatchObject({ role: 'assistant', reasoning_content: 'Let me check the tree first.' });
    expect(JSON.stringify(srv!.requests[1]!.body.messages)).not.toContain('reasoning_content');
  });

  it('waits out a short 429 without counting it as a step; a 500 ends the run as a retriable error for the runtime', async () => {
    const r = await run([{ status: 429, retryAfter: 0 }, call('bash', { command: 'true' }), call('submit', {})]);
    expect(r.exitStatus).toBe('submitted');
    expect(r.steps).toBe(2);
    expect(srv!.requests).toHaveLength(3);
    await srv!.close();
    srv = undefined;
    const failed = await run([call('bash', { command: 'true' }), { status: 500 }, call('submit', {})]);
    expect(failed.exitStatus).toBe('error');
    expect(failed.error).toMatchObject({ name: 'LlmError', retriable: true });
    expect(srv!.requests).toHaveLength(2); // no retry inside the loop: the runtime re-runs the record
  });

  it('answers malformed tool arguments, unknown tools and replies without tool calls, then goes on', async () => {
    const r = await run([
      call('bash', '{"command": "ls'),
      call('bash', { cmd: 'ls' }),
      call('bash', { command: 42 }),
      call('rm_rf', {}),
      { content: 'I think I am done.' },
      call('submit', { summary: 'ok' }),
    ]);
    expect(r.exitStatus).toBe('submitted');
    const texts = r.messages.filter((m) => m.role === 'tool' || m.role === 'user').map((m) => String(m.content));
    expect(texts.some((t) => t.includes('not valid JSON'))).toBe(true);
    expect(texts.some((t) => t.includes('arguments.command is required'))).toBe(true);
    expect(texts.some((t) => t.includes('arguments.command must be a string'))).toBe(true);
    expect(texts.some((t) => t.includes('no tool named "rm_rf"'))).toBe(true);
    expect(texts.some((t) => t.includes('no tool call'))).toBe(true);
  });

  it('ends with step-limit when the model never submits', async () => {
    const r = await run([], { budgets: { maxSteps: 3 } }, call('bash', { command: 'echo again' }));
    expect(r.exitStatus).toBe('step-limit');
    expect(r.submission).toBeNull();
    expect(r.steps).toBe(3);
    expect(srv!.requests).toHaveLength(3);
  });

  it('ends with token-limit and cost-limit', async () => {
    const t = await run([], { budgets: { maxSteps: 50, maxTokens: 250 } }, call('bash', { command: 'true' }));
    expect(t.exitStatus).toBe('token-limit');
    expect(t.steps).toBe(3); // 110 tokens per step: 110, 220, 330 ≥ 250
    await srv!.close();
    srv = undefined;
    const c = await run([], { budgets: { maxSteps: 50, maxCostUsd: 0.0003 } }, call('bash', { command: 'true' }));
    expect(c.exitStatus).toBe('cost-limit');
    expect(c.costUsd).toBeGreaterThanOrEqual(0.0003);
  });

  it('ends with time-limit when the wall-time budget runs out during a model call', async () => {
    // generous enough for a loaded CI machine to finish step 1; the second reply would come far too late
    const r = await run([call('bash', { command: 'true' }), { content: 'late', delayMs: 60_000 }], { budgets: { maxSteps: 10, maxWallMs: 2_000 } });
    expect(r.exitStatus).toBe('time-limit');
    expect(r.steps).toBe(1);
  });

  it('kills a bash command at its timeout and tells the model', async () => {
    const r = await run([call('bash', { command: 'sleep 30' }), call('submit', {})], { commandTimeoutMs: 200 });
    expect(r.exitStatus).toBe('submitted');
    const obs = String(r.messages[3]!.content);
    expect(obs).toContain('<returncode>124</returncode>');
    expect(obs).toContain('killed after 200 ms');
  });

  it('lets the harness reject a submission and the model try again', async () => {
    let checks = 0;
    const r = await run(
      [call('submit', { test_command: 'pytest' }), call('submit', { test_command: 'pytest -rA' })],
      {
        submit: {
          parameters: { type: 'object', properties: { test_command: { type: 'string' } }, required: ['test_command'] },
          validate: (s) => (checks++, String(s.test_command).includes('-rA') ? null : 'no report produced'),
        },
      },
    );
    expect(r.exitStatus).toBe('submitted');
    expect(r.submission).toEqual({ test_command: 'pytest -rA' });
    expect(checks).toBe(2);
    expect(r.messages.some((m) => m.role === 'tool' && String(m.content).includes('Submission rejected: no report produced'))).toBe(true);
  });

  it('ends with error (not retriable) on a 400, keeping the trajectory', async () => {
    const r = await run([call('bash', { command: 'true' }), { status: 400, message: 'context too long' }]);
    expect(r.exitStatus).toBe('error');
    expect(r.error?.retriable).toBe(false);
    expect(r.steps).toBe(1);
    expect(r.messages.length).toBe(4);
  });

  it('throws when the caller aborts', async () => {
    const ac = new AbortController();
    const p = run([{ content: 'x', delayMs: 10_000 }], { signal: ac.signal });
    setImmediate(() => ac.abort(new Error('partition revoked')));
    await expect(p).rejects.toThrow('partition revoked');
  });
});

describe('loop helpers', () => {
  it('validates argument shapes', () => {
    const s = { type: 'object' as const, properties: { a: { type: 'integer' as const }, b: { type: 'array' as const, items: { type: 'string' as const } } }, required: ['a'], additionalProperties: false };
    expect(validateArgs({ a: 1, b: ['x'] }, s)).toEqual([]);
    expect(validateArgs({ a: 1.5 }, s)).toEqual(['arguments.a must be an integer']);
    expect(validateArgs({ b: [1], c: 1 }, s)).toEqual(['arguments.a is required', 'arguments.b[0] must be a string', 'arguments.c is not a known argument']);
    expect(validateArgs([], s)).toEqual(['arguments must be an object']);
  });
  it('keeps head and tail of long observations', () => {
    const t = truncateObservation('a'.repeat(100) + 'b'.repeat(100), 50);
    expect(t.startsWith('a'.repeat(25))).toBe(true);
    expect(t.endsWith('b'.repeat(25))).toBe(true);
    expect(t).toContain('150 characters elided');
  });
});
