// The agent loop and the solver's diff collection on the REAL Docker sandbox (operators/sandbox/docker.ts):
// a scripted model edits a git repository inside a network-less container of the offline python base image.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { DockerSandboxFactory } from '../../../operators/sandbox/docker.js';
import type { Sandbox } from '../../../operators/sandbox/types.js';
import { runAgent } from '../../../operators/agents/loop.js';
import { collectDiff } from '../../../operators/distill.js';
import { createLlmClient } from '../../../operators/llm/client.js';
import { agentLlmSchema } from '../../../operators/llm/config.js';
import { startChatServer, type ChatServer } from '../../helpers/chat-server.js';

const haveDocker = !!process.env.DOCKER_HOST || existsSync('/var/run/docker.sock');

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
  afterAll(async () => {
    await sb?.destroy();
    await srv?.close();
  });

  it('runs bash/read_file/write_file in the container, times out a command, and collects the diff', async () => {
    srv = await startChatServer([
      { toolCalls: [{ name: 'bash', arguments: { command: 'python3 -c "import calc; print(calc.add(2, 3))"' } }] },
      { toolCalls: [{ name: 'read_file', arguments: { path: 'calc.py' } }] },
      { toolCalls: [{ name: 'write_file', arguments: { path: 'calc.py', content: 'def add(a, b):\n    return a + b\n' } }, { name: 'bash', arguments: { command: 'python3 -c "import calc; print(calc.add(2, 3))"' } }] },
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
});
