import { afterEach, describe, expect, it } from 'vitest';
import { statementStage, cleanBody, leakageInputOf } from '../../../operators/statement.js';
import { startChatServer, type ChatServer, type ScriptEntry } from '../../helpers/chat-server.js';
import { createLocalSandbox } from '../../helpers/local-sandbox.js';
import { createLlmClient } from '../../../operators/llm/client.js';
import { agentLlmSchema, type AgentName } from '../../../operators/llm/config.js';
import { checkLeakage } from '../../../operators/quality/leakage.js';
import type { SandboxFactory, Sandbox } from '../../../operators/sandbox/types.js';
import type { TaskStated } from '../../../schemas/types.gen.js';
import { slicedTask, envelope, CLEAN_ISSUE, SLICED_PATCH, SLICED_TEST_PATCH } from './fixture.js';

let srv: ChatServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

const llmFor = (agent: AgentName, baseURL: string) =>
  createLlmClient(agent, agentLlmSchema.parse({ baseURL, model: `${agent}-model`, maxRetries: 2, priceInPerMTok: 1, priceOutPerMTok: 1 }));
const submit = (statement: string) => ({ toolCalls: [{ name: 'submit', arguments: { statement } }], usage: { prompt_tokens: 1000, completion_tokens: 100 } });

const GOOD = `Calling \`sliced\` with a negative size silently yields wrong results:

\`\`\`python
>>> list(sliced('ABCDEFG', -1))
[]
\`\`\`

A negative \`n\` is meaningless. Expected: \`ValueError\` is raised for any n < 0, both with and without \`strict=True\`.`;

/** Every statement the stage produces goes through the gate; assert it independently too. */
function expectGateClean(out: TaskStated) {
  const r = checkLeakage({ ...leakageInputOf(out), statement: out.statement.problem_statement });
  expect(leakageInputOf(out)).toMatchObject({ patch: SLICED_PATCH, testPatch: SLICED_TEST_PATCH });
  expect(r.strong).toBe(false);
  expect(out.statement.leakage_score).toBe(r.score);
}

describe('statement stage, rules', () => {
  it('uses the linked issue (SWE-bench style), with category, difficulty and provenance', async () => {
    const o = await statementStage().handle(envelope(slicedTask({ issues: [CLEAN_ISSUE], body: 'Fixes #1199\n\n- [x] tests added' })));
    expect(o.kind).toBe('accepted');
    if (o.kind !== 'accepted') return;
    const s = o.value.statement;
    expect(s.problem_statement).toBe(`${CLEAN_ISSUE.title}\n\n${CLEAN_ISSUE.body}`);
    expect(s).toMatchObject({ source: 'issue', method: 'rules', model: null, prompt_version: null, leakage_score: 0, leakage_evidence: [], judge: null, category: 'Input/Boundary', category_method: 'rules' });
    expect(s.difficulty).toEqual({ files: 1, hunks: 1, lines: 3, level: 'easy' });
    expect(o.value.provenance.at(-1)).toMatchObject({ stage: 'statement', method: 'rules', tokens_in: 0, cost_usd: 0 });
    expect(o.value.provenance).toHaveLength(2);
    expect(o.meta).toMatchObject({ repo: 'more-itertools/more-itertools', method: 'rules', tokensIn: 0 });
    expectGateClean(o.value);
  });

  it('falls back to the PR title and body cleaned of templates', async () => {
    const body = `<!-- Thank you for contributing! Describe your change below. -->
## Description
Passing a negative n to sliced() gives an empty result instead of an error.

## Checklist
- [x] I added tests
- [ ] I updated the docs

## Related issues

Closes #1199
Signed-off-by: Someone <s@example.com>`;
    const o = await statementStage().handle(envelope(slicedTask({ body })));
    expect(o.kind).toBe('accepted');
    if (o.kind !== 'accepted') return;
    expect(o.value.statement.source).toBe('pr');
    expect(o.value.statement.problem_statement).toBe('Raise for negative slice sizes in sliced()\n\n## Description\nPassing a negative n to sliced() gives an empty result instead of an error.');
  });

  it('prefers the PR text over a terse issue', async () => {
    const o = await statementStage().handle(envelope(slicedTask({ issues: [{ number: 5, title: 'Bug', body: null, source: 'body' }], body: 'Negative n passed to sliced() yields [] instead of raising.' })));
    expect(o).toMatchObject({ kind: 'accepted', value: { statement: { source: 'pr' } } });
  });

  it('rejects an issue quoting the fix, keeps one that only names the file (with evidence)', async () => {
    const quoting = { ...CLEAN_ISSUE, body: "Please add `raise ValueError('n must be at least 0')` when n < 0." };
    const a = await statementStage().handle(envelope(slicedTask({ issues: [quoting] })));
    expect(a).toMatchObject({ kind: 'rejected', reason: 'leaky-statement' });
    const naming = { ...CLEAN_ISSUE, body: `${CLEAN_ISSUE.body}\n\nTraceback points into more_itertools/more.py.` };
    const b = await statementStage().handle(envelope(slicedTask({ issues: [naming] })));
    expect(b.kind).toBe('accepted');
    if (b.kind !== 'accepted') return;
    expect(b.value.statement.leakage_evidence).toEqual([{ kind: 'file-path', match: 'more_itertools/more.py' }]);
    expect(b.value.statement.leakage_score).toBe(0.5);
  });

  it('rejects a statement that names the failing test, and an empty one', async () => {
    const a = await statementStage().handle(envelope(slicedTask({ issues: [{ ...CLEAN_ISSUE, body: 'test_negative fails' }] })));
    expect(a).toMatchObject({ kind: 'rejected', reason: 'leaky-statement' });
    const b = await statementStage().handle(envelope(slicedTask({ title: 'Fix', body: '<!-- template -->' })));
    expect(b).toMatchObject({ kind: 'rejected', reason: 'empty-statement' });
  });

  it('cleanBody drops bot lines of squash-merge bodies', () => {
    // shape of python-attrs/attrs squash commits
    expect(cleanBody('* speed up x\n\n* [pre-commit.ci] auto fixes from pre-commit.com hooks\n\nfor more information, see https://pre-commit.ci\n\nThis reverts commit 4e0af4b4c1817fce5fb458530bb954b3c101b8aa.\nCo-authored-by: A <a@b>')).toBe('* speed up x');
  });

  it('cleanBody keeps content and drops template parts', () => {
    expect(cleanBody('a\r\n<!-- x\ny -->\n<details><summary>log</summary>bot</details>\n### Empty\n### Filled\ntext\n- [ ] todo\nFixes owner/repo#3, #4')).toBe('a\n\n### Filled\ntext');
  });
});

describe('statement stage, agents', () => {
  it('writer + judge + classifier: accepted, accounted and recorded', async () => {
    srv = await startChatServer([
      submit(GOOD),
      { content: '{"verdict": "ok", "reason": "clear"}', usage: { prompt_tokens: 500, completion_tokens: 10 } },
      { content: '{"category": "Input/Boundary"}', usage: { prompt_tokens: 400, completion_tokens: 10 } },
    ]);
    const stage = statementStage({ writer: llmFor('statement-writer', srv.baseURL), judge: llmFor('judge', srv.baseURL), classifier: llmFor('classifier', srv.baseURL) });
    const o = await stage.handle(envelope(slicedTask({ issues: [CLEAN_ISSUE] })));
    expect(o.kind).toBe('accepted');
    if (o.kind !== 'accepted') return;
    const s = o.value.statement;
    expect(s).toMatchObject({ problem_statement: GOOD, source: 'agent', method: 'agent', model: 'statement-writer-model', prompt_version: 'statement-writer.v1', judge: 'ok', category: 'Input/Boundary', category_method: 'agent' });
    expect(o.meta).toMatchObject({ method: 'agent', tokensIn: 1900, tokensOut: 120 });
    expect(o.meta?.costUsd).toBeCloseTo(2020 / 1e6, 12);
    expect(o.value.provenance.at(-1)).toMatchObject({ method: 'agent', prompt_version: 'statement-writer.v1', tokens_in: 1900, tokens_out: 120 });
    // the writer saw the patch, the F2P tests, the issue and the public API it may name
    const user = String(srv.requests[0]!.body.messages[1]!.content);
    expect(user).toContain("raise ValueError('n must be at least 0')");
    expect(user).toContain('tests/test_more.py::SlicedTests::test_negative');
    expect(user).toContain(CLEAN_ISSUE.title);
    expect(user).toMatch(/may and should name these\)\n- sliced/);
    expect(srv.requests[0]!.body.tools?.map((t) => t.function.name)).toEqual(['submit']);
    expectGateClean(o.value);
  });

  it('a judge verdict listed in judgeRejects rejects the task', async () => {
    srv = await startChatServer([{ content: '{"verdict": "gives-solution", "reason": "names the guard"}' }, { content: '{"verdict": "ok"}' }]);
    const judge = llmFor('judge', srv.baseURL);
    const a = await statementStage({ judge, judgeRejects: ['gives-solution'] }).handle(envelope(slicedTask({ issues: [CLEAN_ISSUE] })));
    expect(a).toMatchObject({ kind: 'rejected', reason: 'judge-gives-solution' });
    const b = await statementStage({ judge, judgeRejects: ['gives-solution'] }).handle(envelope(slicedTask({ issues: [CLEAN_ISSUE] })));
    expect(b).toMatchObject({ kind: 'accepted', value: { statement: { judge: 'ok', method: 'rules' } } });
  });

  it('a leaky first submission gets one rewrite with the evidence', async () => {
    srv = await startChatServer([submit(`In more_itertools/more.py add \`if n < 0: raise ValueError('n must be at least 0')\`. ${GOOD}`), submit(GOOD)]);
    const o = await statementStage({ writer: llmFor('statement-writer', srv.baseURL) }).handle(envelope(slicedTask()));
    expect(o.kind).toBe('accepted');
    if (o.kind !== 'accepted') return;
    expect(o.value.statement.problem_statement).toBe(GOOD);
    expect(o.value.statement.category_method).toBe('rules');
    const feedback = srv.requests[1]!.body.messages.at(-1)!;
    expect(feedback.role).toBe('tool');
    expect(String(feedback.content)).toContain('leakage check flagged');
    expect(String(feedback.content)).toContain('file-path: more_itertools/more.py');
  });

  it('still leaky after the rewrite → rejected leaky-statement', async () => {
    const leaky = `Edit more_itertools/more.py so that sliced raises. ${GOOD}`;
    srv = await startChatServer([submit(leaky), submit(leaky)]);
    const o = await statementStage({ writer: llmFor('statement-writer', srv.baseURL) }).handle(envelope(slicedTask()));
    expect(o).toMatchObject({ kind: 'rejected', reason: 'leaky-statement', meta: { method: 'agent', tokensIn: 2000 } });
    expect(srv.requests).toHaveLength(2);
  });

  it('a writer that never submits falls back to the rules, tokens still counted', async () => {
    srv = await startChatServer([], { fallback: { content: 'thinking…', usage: { prompt_tokens: 10, completion_tokens: 1 } } });
    const o = await statementStage({ writer: llmFor('statement-writer', srv.baseURL), writerBudgets: { maxSteps: 2 } }).handle(envelope(slicedTask({ issues: [CLEAN_ISSUE] })));
    expect(o.kind).toBe('accepted');
    if (o.kind !== 'accepted') return;
    expect(o.value.statement).toMatchObject({ source: 'issue', method: 'rules' });
    expect(o.meta).toMatchObject({ tokensIn: 20, tokensOut: 2 });
  });

  it('an LLM outage fails the record retriably', async () => {
    srv = await startChatServer([], { fallback: { status: 503 } });
    const o = await statementStage({ writer: llmFor('statement-writer', srv.baseURL) }).handle(envelope(slicedTask({ issues: [CLEAN_ISSUE] })));
    expect(o).toMatchObject({ kind: 'failed', retriable: true });
    expect(srv.requests).toHaveLength(1); // one request: the runtime, not the client, retries
  });

  it('gives the writer read-only repository tools in a sandbox of the task image, destroyed afterwards', async () => {
    const created: Array<{ image: string; network: boolean; sb: Sandbox }> = [];
    let destroyed = 0;
    const factory: SandboxFactory = {
      async create(opts) {
        const sb = await createLocalSandbox(opts.workdir ?? '/testbed');
        await sb.writeFile('/testbed/more_itertools/more.py', 'def sliced(seq, n, strict=False):\n    pass\n');
        const wrapped: Sandbox = { ...sb, id: sb.id, destroy: async () => { destroyed++; await sb.destroy(); } };
        created.push({ image: opts.image, network: opts.network, sb: wrapped });
        return wrapped;
      },
      imageId: async () => null,
      baseImage: async () => 'none',
      sweep: async () => 0,
    };
    srv = await startChatServer([{ toolCalls: [{ name: 'bash', arguments: { command: 'grep -rn "def sliced" .' } }] }, submit(GOOD)]);
    const o = await statementStage({ writer: llmFor('statement-writer', srv.baseURL), sandboxes: factory }).handle(envelope(slicedTask()));
    expect(o.kind).toBe('accepted');
    expect(created).toEqual([expect.objectContaining({ image: 'swe-stream/task:mit-1200', network: false })]);
    expect(destroyed).toBe(1);
    expect(srv.requests[0]!.body.tools?.map((t) => t.function.name)).toEqual(['bash', 'read_file', 'submit']);
    expect(String(srv.requests[1]!.body.messages.at(-1)!.content)).toContain('more_itertools/more.py:1:def sliced');
  });
});
