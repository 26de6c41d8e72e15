// The agent loop and the solver's diff collection on the REAL Docker sandbox (operators/sandbox/docker.ts):
// a scripted model edits a git repository inside a network-less container of the offline python base image.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerSandboxFactory } from '../../../operators/sandbox/docker.js';
import type { Sandbox } from '../../../operators/sandbox/types.js';
import { runAgent } from '../../../operators/agents/loop.js';
import { collectDiff, distillStage, type GradeFn } from '../../../operators/distill.js';
import { slicedTask, stated, envelope } from '../statement/fixture.js';
import { createLlmClient } from '../../../operators/llm/client.js';
import { agentLlmSchema } from '../../../operators/llm/config.js';
import { startChatServer, type ChatServer } from '../../helpers/chat-server.js';
import { dockerEngineAvailable } from '../../helpers/docker.js';

const haveDocker = await dockerEngineAvailable();

describe.skipIf(!haveDocker)('agent loop in a Docker sandbox', () => {
  let factory: DockerSandboxFactory;
  let sb: Sandbox | undefined;
  let srv: ChatServer | undefined;
  beforeAll(async () => {
    factory = new DockerSandboxFactory({ labels: { 'swe-stream.test': 'agents-docker-loop' } });
    const image = await factory.baseImage('python'); // built once offline (debootstrap) and cached by recipe hash
    sb = await factory.create({ image, network: false, workdir: '/testbed' });
    const init = await sb.exec(
      "cd /testbed && printf 'def add(a, b):\\n    return a - b\\n' > calc.py && git init -q && git -c user.email=t@t -c user.name=t add -A && git -c user.email=t@t -c user.name=t commit -qm base",
      { timeoutMs: 60_000 },
    );
    expect(init.exitCode, init.stderr).toBe(0);
  });
  let taskImage: string | undefined;
  afterAll(async () => {
    await sb?.destroy();
    await srv?.close();
    if (taskImage) await factory.docker.getImage(taskImage).remove({ force: true });
  });

  it('runs bash/read_file/write_file in the container, times out a command, and collects the diff', async () => {
    srv = await startChatServer([
      // -B: the rewrite below keeps the file's size, so within one second a cached .pyc would still look fresh.
      { toolCalls: [{ name: 'bash', arguments: { command: 'python3 -B -c "import calc; print(calc.add(2, 3))"' } }] },
      { toolCalls: [{ name: 'read_file', arguments: { path: 'calc.py' } }] },
      { toolCalls: [{ name: 'write_file', arguments: { path: 'calc.py', content: 'def add(a, b):\n    return a + b\n' } }, { name: 'bash', arguments: { command: 'python3 -B -c "import calc; print(calc.add(2, 3))"' } }] },
      { toolCalls: [{ name: 'bash', arguments: { command: 'sleep 20' } }] },
      { toolCalls: [{ name: 'bash', arguments: { command: 'getent hosts example.com || echo no-network' } }] },
      { toolCalls: [{ name: 'submit', arguments: { summary: 'fixed add' } }] },
    ]);
    const llm = createLlmClient('solver', agentLlmSchema.parse({ baseURL: srv.baseURL, model: 'scripted' }));
    const r = await runAgent({ llm, system: 's', user: 'u', sandbox: sb!, workdir: '/testbed', budgets: { maxSteps: 10, maxWallMs: 90_000 }, commandTimeoutMs: 1_500 });
    expect(r.exitStatus).toBe('submitted');
    const tool = r.messages.filter((m) => m.role === 'tool').map((m) => String(m.content));
    expect(tool[0]).toMatch(/<returncode>0<\/returncode>\n<output>\n-1\n/);
    expect(tool[1]).toBe('def add(a, b):\n    return a - b\n');
    expect(tool[3]).toMatch(/<returncode>0<\/returncode>\n<output>\n5\n/);
    expect(tool[4]).toContain('<returncode>124</returncode>');
    expect(tool[5]).toContain('no-network');
    const diff = await collectDiff(sb!, '/testbed');
    expect(diff).toContain('-    return a - b\n+    return a + b');
  });

  it('distills on task-image containers: K attempts, diff graded in a fresh container', async () => {
    // The "task image": the repository at its base commit, committed from a container (history = one commit).
    const prep = await factory.create({ image: await factory.baseImage('python'), network: false, workdir: '/testbed' });
    try {
      const r = await prep.exec(
        "cd /testbed && printf 'def add(a, b):\\n    return a - b\\n' > calc.py && git init -q && git -c user.email=t@t -c user.name=t add -A && git -c user.email=t@t -c user.name=t commit -qm base",
        { timeoutMs: 60_000 },
      );
      expect(r.exitCode, r.stderr).toBe(0);
      taskImage = (await prep.commit(`swe-stream/test-distill:${process.pid}`)).ref;
    } finally {
      await prep.destroy();
    }
    // Grader: apply the patch in a fresh container and run a check the solver never saw.
    const grade: GradeFn = async (_t, patch) => {
      const g = await factory.create({ image: taskImage!, network: false, workdir: '/testbed' });
      try {
        await g.writeFile('/tmp/model.patch', patch);
        const r = await g.exec('git apply /tmp/model.patch && python3 -c "import calc; assert calc.add(2, 3) == 5"', { timeoutMs: 60_000, cwd: '/testbed' });
        return r.exitCode === 0;
      } finally {
        await g.destroy();
      }
    };
    await srv?.close();
    srv = await startChatServer([
      { toolCalls: [{ name: 'bash', arguments: { command: "sed -i 's/a - b/a + b/' calc.py && git diff --stat" } }] },
      { toolCalls: [{ name: 'submit', arguments: {} }] },
      { toolCalls: [{ name: 'bash', arguments: { command: "sed -i 's/a - b/a * b/' calc.py" } }] },
      { toolCalls: [{ name: 'submit', arguments: {} }] },
    ]);
    const solver = createLlmClient('solver', agentLlmSchema.parse({ baseURL: srv.baseURL, model: 'scripted' }));
    const task = stated(slicedTask({ taskImage }), 'add(2, 3) returns -1; it should return 5.');
    task.verification.workdir = '/testbed';
    const o = await distillStage({ solver, sandboxes: factory, grade, attempts: 2, budgets: { maxSteps: 5, maxWallMs: 120_000 } }).handle(envelope(task));
    expect(o.kind).toBe('accepted');
    if (o.kind !== 'accepted') return;
    expect(o.values!.map((t) => [t.exit_status, t.resolved])).toEqual([
      ['submitted', true],
      ['submitted', false],
    ]);
    expect(o.values![0]!.final_patch).toContain('+    return a + b');
    expect(o.values![1]!.final_patch).toContain('+    return a * b');
  });
});
