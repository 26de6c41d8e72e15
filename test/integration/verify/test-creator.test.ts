/**
 * The Unit-test Creator path of test-create against a scripted chat-completions server (the real wire
 * protocol) and real containers: the harness turns down a test that fails at the parent with an import
 * error and one that already passes there, accepts one that fails on an assertion and passes with the gold
 * patch, and the accepted f2p_script then verifies (and evaluates in the task image) like PR tests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerSandboxFactory } from '../../../operators/sandbox/docker.js';
import { testCreateStage, testCreatorAgent } from '../../../operators/test-create.js';
import { verifyStage } from '../../../operators/verify.js';
import { createLlmClient } from '../../../operators/llm/client.js';
import { agentLlmSchema } from '../../../operators/llm/config.js';
import { startChatServer, type ChatServer } from '../../helpers/chat-server.js';
import { candidateOf, environmentOf, envelope, readyOf } from './helpers.js';
import { WORKDIR, parent, prs, pythonEnvImage, repo } from './pyrepo.js';

/** Container-heavy tests get room on a loaded 2-core machine (vitest's default here is 120 s). */
const CONTAINER_TEST_MS = 900_000;
const sandboxes = new DockerSandboxFactory({ labels: { 'swe-stream.test': 'verify-test-creator' } });
let envImage: { ref: string; id: string };
let srv: ChatServer | undefined;
const taskImages: string[] = [];

beforeAll(async () => {
  envImage = await pythonEnvImage(sandboxes);
}, 600_000);

afterAll(async () => {
  await srv?.close();
  repo.remove();
  for (const ref of taskImages) await sandboxes.docker.getImage(ref).remove({ force: true }).catch(() => undefined);
});

const write = (content: string) => ({ name: 'write_file', arguments: { path: 'tests/test_fail_to_pass.py', content } });
const submit = { name: 'submit', arguments: { test_file: 'tests/test_fail_to_pass.py' } };

function stageWith(server: ChatServer, maxSteps: number) {
  const llm = createLlmClient('test-creator', agentLlmSchema.parse({ baseURL: server.baseURL, model: 'scripted' }));
  return testCreateStage({ createTest: testCreatorAgent({ llm, sandboxes, budgets: { maxSteps, maxWallMs: 600_000 }, runTimeoutMs: 120_000 }) });
}

const ready = (number: number) => readyOf(
  candidateOf(repo, { name: 'calc', number, parent, pr: prs.notest, language: 'python' }),
  environmentOf(envImage, { language: 'python', runner: 'pytest', workdir: WORKDIR }),
);

describe('test-create with the Unit-test Creator agent', () => {
  it('accepts only a test the harness proves fails on an assertion before and passes after; it then verifies', async () => {
    srv = await startChatServer([
      { toolCalls: [write('from calc.nothing import mul\n\ndef test_mul():\n    assert mul(2, 3) == 6\n'), submit] },
      { toolCalls: [write('from calc.ops import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n'), submit] },
    ]);
    const out = await stageWith(srv, 5).handle(envelope(ready(20)));
    if (out.kind !== 'accepted') throw new Error(JSON.stringify(out));
    const t = out.value.tests;
    expect(t).toMatchObject({ method: 'agent', test_patch: '', f2p_script_path: 'tests/test_fail_to_pass.py', test_files: ['tests/test_fail_to_pass.py'] });
    expect(t.f2p_script).toContain('from calc.ops import mul');
    expect(out.value.provenance.at(-1)).toMatchObject({ stage: 'test-create', method: 'agent', model: 'scripted', prompt_version: 'test-creator.v1' });
    // The first submission was turned down with the harness's reason, sent back as the tool result.
    const toolMsgs = srv.requests[1]!.body.messages.filter((m) => m.role === 'tool').map((m) => String(m.content));
    expect(toolMsgs.some((c) => /errors at the parent commit|import or syntax error/.test(c))).toBe(true);

    const verified = await verifyStage({ sandboxes, runTimeoutMs: 120_000, taskImagePrefix: 'swe-stream-test/task' }).handle(envelope(out.value));
    if (verified.kind !== 'accepted') throw new Error(JSON.stringify(verified));
    taskImages.push(verified.value.verification.task_image_ref);
    expect(verified.value.verification).toMatchObject({ FAIL_TO_PASS: ['tests/test_fail_to_pass.py::test_mul'], PASS_TO_PASS: [], gold_resolved: true, empty_resolved: false });
  }, CONTAINER_TEST_MS);

  it('rejects when every submission fails the harness (a test that passes without the change)', async () => {
    await srv?.close();
    srv = await startChatServer([{ toolCalls: [write('from calc.ops import add\n\n\ndef test_add():\n    assert add(1, 1) == 2\n'), submit] }]);
    const out = await stageWith(srv, 1).handle(envelope(ready(21)));
    expect(out).toMatchObject({ kind: 'rejected', reason: 'generated-test-rejected', detail: expect.stringContaining('passes at the parent commit') });
  }, CONTAINER_TEST_MS);

  it('rejects no-tests without an agent, and a PR that changes only tests', async () => {
    expect(await testCreateStage().handle(envelope(ready(22)))).toMatchObject({ kind: 'rejected', reason: 'no-tests' });
    const onlyTests = readyOf(
      candidateOf(repo, { name: 'calc', number: 23, parent, pr: prs.nof2p, language: 'python', diff: repo.diff(parent, prs.nof2p).split('diff --git').filter((s) => !s.includes('calc/ops.py')).join('diff --git') }),
      environmentOf(envImage, { language: 'python', runner: 'pytest', workdir: WORKDIR }),
    );
    expect(await testCreateStage().handle(envelope(onlyTests))).toMatchObject({ kind: 'rejected', reason: 'no-code-change' });
  }, CONTAINER_TEST_MS);
});
