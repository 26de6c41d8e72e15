import { afterEach, describe, expect, it } from 'vitest';
import { distillStage, solverPassRate, trajectoryId, DISTILL_ATTEMPTS_STORE, type GradeFn } from '../../../operators/distill.js';
import { tempStore } from '../../helpers/store.js';
import { startChatServer, type ChatServer, type ScriptEntry } from '../../helpers/chat-server.js';
import { createLocalSandbox } from '../../helpers/local-sandbox.js';
import { createLlmClient } from '../../../operators/llm/client.js';
import { agentLlmSchema } from '../../../operators/llm/config.js';
import type { Sandbox, SandboxFactory } from '../../../operators/sandbox/types.js';
import type { TaskStated } from '../../../schemas/types.gen.js';
import { slicedTask, stated, envelope } from '../statement/fixture.js';

let srv: ChatServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

const SOURCE = "def sliced(seq, n, strict=False):\n    return [seq[i : i + n] for i in range(0, len(seq), n or 1)]\n";
const FIXED = "def sliced(seq, n, strict=False):\n    if n < 0:\n        raise ValueError('n must be at least 0')\n    return [seq[i : i + n] for i in range(0, len(seq), n or 1)]\n";

/** Local-process sandboxes holding a one-commit git repository (the "task image"). */
function localFactory(log: { images: string[]; networks: boolean[]; destroyed: number }, leakInto?: TaskStated): SandboxFactory {
  return {
    async create(opts) {
      log.images.push(opts.image);
      log.networks.push(opts.network);
      const sb = await createLocalSandbox(opts.workdir ?? '/testbed');
      await sb.writeFile('/testbed/more_itertools/more.py', SOURCE);
      const r = await sb.exec('git init -q && git -c user.email=t@t -c user.name=t add -A && git -c user.email=t@t -c user.name=t commit -qm base', { timeoutMs: 20_000 });
      if (r.exitCode !== 0) throw new Error(r.stderr);
      if (leakInto) {
        // a broken task image: the fix commit is still in the object store
        const fix = await sb.exec("git stash -q 2>/dev/null; git checkout -qb fix && echo '# fixed' >> more_itertools/more.py && git -c user.email=t@t -c user.name=t commit -qam fix && git rev-parse HEAD && git checkout -q -", { timeoutMs: 20_000 });
        leakInto.candidate.pr_commit = fix.stdout.trim().split('\n')[0]!;
      }
      const wrapped: Sandbox = { ...sb, destroy: async () => { log.destroyed++; await sb.destroy(); } };
      return wrapped;
    },
    imageId: async () => null,
    baseImage: async () => 'none',
    sweep: async () => 0,
  };
}

const task = (): TaskStated => stated(slicedTask(), '`sliced(seq, -1)` should raise ValueError instead of returning [].');
const solver = (baseURL: string) => createLlmClient('solver', agentLlmSchema.parse({ baseURL, model: 'solver-model', maxRetries: 1, priceInPerMTok: 1, priceOutPerMTok: 4 }));
const call = (name: string, args: unknown): ScriptEntry => ({ toolCalls: [{ name, arguments: args }], usage: { prompt_tokens: 100, completion_tokens: 10 } });

/** A grader standing in for operators/harness/evaluate: resolved when the patch adds the guard. */
const grades: string[] = [];
const grade: GradeFn = async (_t, patch) => {
  grades.push(patch);
  return patch.includes('+    if n < 0:');
};

describe('distill stage', () => {
  it('refuses a task image in which the PR commit is still reachable', async () => {
    srv = await startChatServer([call('bash', { command: 'git log --all --oneline' })]);
    const t = task();
    const log = { images: [] as string[], networks: [] as boolean[], destroyed: 0 };
    const err = await distillStage({ solver: solver(srv.baseURL), sandboxes: localFactory(log, t), grade, attempts: 1 }).handle(envelope(t)).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'HistoryLeak', retriable: false });
    expect(srv.requests).toHaveLength(0);
    expect(log.destroyed).toBe(1);
  });

  it('without a solver: skipped-no-llm', async () => {
    const o = await distillStage({ grade }).handle(envelope(task()));
    expect(o).toMatchObject({ kind: 'rejected', reason: 'skipped-no-llm', meta: { method: 'skipped' } });
  });

  it('runs K attempts in fresh task-image sandboxes, grades each diff, emits all trajectories', async () => {
    grades.length = 0;
    srv = await startChatServer([
      // attempt 1: explores, fixes, submits
      call('bash', { command: 'grep -n "def sliced" -r .' }),
      call('write_file', { path: 'more_itertools/more.py', content: FIXED }),
      call('submit', { summary: 'raise for negative n' }),
      // attempt 2: a wrong edit, then runs out of steps
      call('bash', { command: "sed -i 's/n or 1/max(n, 1)/' more_itertools/more.py && echo 'x = 1' > scratch.py" }),
      call('bash', { command: 'true' }),
      call('bash', { command: 'true' }),
      // attempt 3: never touches anything
      call('submit', {}),
    ]);
    const log = { images: [] as string[], networks: [] as boolean[], destroyed: 0 };
    const stage = distillStage({ solver: solver(srv.baseURL), sandboxes: localFactory(log), grade, attempts: 3, budgets: { maxSteps: 3 }, temperature: 0.7 });
    const o = await stage.handle(envelope(task()));
    expect(o.kind).toBe('accepted');
    if (o.kind !== 'accepted') return;
    const ts = o.values!;
    expect(ts.map((t) => [t.attempt, t.exit_status, t.resolved, t.steps])).toEqual([
      [1, 'submitted', true, 3],
      [2, 'step-limit', false, 3],
      [3, 'submitted', false, 1],
    ]);
    expect(o.value).toBe(ts[0]);
    expect(solverPassRate(ts)).toBeCloseTo(1 / 3);
    expect(log).toEqual({ images: Array(3).fill('swe-stream/task:mit-1200'), networks: [false, false, false], destroyed: 3 });
    // attempt 1's diff is the fix; attempt 2's includes the new file; attempt 3's empty diff was not graded
    expect(ts[0]!.final_patch).toContain("+        raise ValueError('n must be at least 0')");
    expect(ts[1]!.final_patch).toContain('scratch.py');
    expect(ts[2]!.final_patch).toBe('');
    expect(grades).toHaveLength(2);
    const t0 = ts[0]!;
    expect(t0).toMatchObject({ trajectory_id: trajectoryId(t0.instance_id, 'solver-model', 1), model: 'solver-model', prompt_version: 'solver.v1', tokens_in: 300, tokens_out: 30 });
    expect(t0.cost_usd).toBeCloseTo((300 + 30 * 4) / 1e6, 12);
    const msgs = JSON.parse(t0.messages_json) as Array<{ role: string; content: unknown; tool_calls?: unknown[] }>;
    expect(msgs.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'tool', 'assistant', 'tool']);
    expect(String(msgs[1]!.content)).toContain('should raise ValueError');
    expect(JSON.stringify(msgs)).not.toContain('n must be at least 0\')\\n        return'); // the gold patch text is never shown
    expect(String(msgs[1]!.content)).not.toContain('diff --git');
    expect(o.meta).toMatchObject({ method: 'agent', model: 'solver-model', tokensIn: 700, tokensOut: 70 });
    expect(srv!.requests.every((r) => r.body.temperature === 0.7)).toBe(true);
  });

  it('one attempt per store record: a retry after a failing attempt re-runs only that attempt, with the same ids', async () => {
    srv = await startChatServer([
      call('write_file', { path: 'more_itertools/more.py', content: FIXED }),
      call('submit', {}),
      { status: 500 }, // attempt 2 fails: the record fails retriably
      call('submit', {}), // the runtime's retry: attempt 2 again, and only it
    ]);
    const store = await tempStore(DISTILL_ATTEMPTS_STORE);
    try {
      const log = { images: [] as string[], networks: [] as boolean[], destroyed: 0 };
      const stage = distillStage({ solver: solver(srv.baseURL), sandboxes: localFactory(log), grade, attempts: 2, attemptsStore: store });
      const t = task();
      const first = await stage.handle(envelope(t));
      expect(first).toMatchObject({ kind: 'failed', retriable: true });
      expect(srv.requests).toHaveLength(3);
      expect(log.destroyed).toBe(2);
      const second = await stage.handle({ ...envelope(t), attempt: 2 });
      expect(second.kind).toBe('accepted');
      if (second.kind !== 'accepted') return;
      expect(srv.requests).toHaveLength(4); // attempt 1 was not asked again
      expect(log.destroyed).toBe(3);
      expect(second.values!.map((x) => [x.trajectory_id, x.resolved])).toEqual([
        [trajectoryId(t.instance_id, 'solver-model', 1), true],
        [trajectoryId(t.instance_id, 'solver-model', 2), false],
      ]);
      // emitted: the store forgets the task's attempts
      expect(await store.get(trajectoryId(t.instance_id, 'solver-model', 1))).toBeNull();
    } finally {
      await store.close();
    }
  });

  it('fails the record retriably on an LLM outage, and on a grading failure', async () => {
    srv = await startChatServer([], { fallback: { status: 500 } });
    const log = { images: [] as string[], networks: [] as boolean[], destroyed: 0 };
    const o = await distillStage({ solver: solver(srv.baseURL), sandboxes: localFactory(log), grade, attempts: 2 }).handle(envelope(task()));
    expect(o).toMatchObject({ kind: 'failed', retriable: true });
    expect(log.destroyed).toBe(1);
    await srv.close();
    srv = await startChatServer([call('write_file', { path: 'more_itertools/more.py', content: FIXED }), call('submit', {})]);
    const broken: GradeFn = async () => {
      throw new Error('docker daemon went away');
    };
    const log2 = { images: [] as string[], networks: [] as boolean[], destroyed: 0 };
    await expect(distillStage({ solver: solver(srv.baseURL), sandboxes: localFactory(log2), grade: broken, attempts: 1 }).handle(envelope(task()))).rejects.toThrow('docker daemon went away');
    expect(log2.destroyed).toBe(1);
  });
});
