/**
 * The Environment Builder agent (Scale-SWE, arXiv 2602.09892 §3.2) as an {@link EnvAgent} for the
 * env-build stage: a tool loop (operators/agents/loop.ts) in a networked sandbox holding the checkout,
 * prompt prompts/environment-builder.v<N>.md. Its `submit` is checked in the same sandbox before the loop
 * ends (its install commands, then its test command, must leave a report from which at least one passed
 * or failed test parses); the stage then replays the submitted recipe from a clean base image, and only
 * that replay decides.
 */
import type { Candidate } from '../../schemas/types.gen.js';
import type { Sandbox } from '../sandbox/types.js';
import type { Recipe } from './recipes.js';
import type { LlmClient } from '../llm/client.js';
import { renderPrompt } from '../llm/prompts.js';
import { runAgent, type JsonSchema } from '../agents/loop.js';
import { getRunner, RUNNERS, type RunnerName } from '../runners/index.js';
import { REPORT_DIR } from './recipes.js';

/** What the Environment Builder agent path needs (wired by the composition root when an LLM is configured). */
export interface EnvAgent {
  /**
   * Explore the repository in `sandbox` (network on, checkout at /testbed) and propose a recipe. Returns
   * null when the agent gave up. The stage replays the recipe from a clean base image before accepting it.
   */
  propose(input: { sandbox: Sandbox; candidate: Candidate; rulesRecipe: Recipe | null; failure: { reason: string; detail: string }; signal: AbortSignal; testFiles?: string[] }): Promise<{
    recipe: Pick<Recipe, 'installCommands' | 'testCommand' | 'runner' | 'reportPath'> | null;
    model: string | null;
    promptVersion: string | null;
    tokensIn: number;
    tokensOut: number;
    costUsd: number;
    /** how the agent run ended (Trajectory.exit_status vocabulary), for logs */
    exitStatus?: string;
    steps?: number;
  }>;
}

/** Budgets of one Environment Builder run. Units: steps, tokens, USD, ms. */
export interface EnvAgentOptions {
  maxSteps?: number;
  maxTokens?: number;
  maxCostUsd?: number;
  maxWallMs?: number;
  /** per bash call, ms */
  commandTimeoutMs?: number;
  /** prompt version to pin (default: highest present) */
  promptVersion?: number;
}

interface Submission {
  install_commands: string[];
  test_command: string;
  runner: RunnerName;
}

const SUBMIT_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    install_commands: { type: 'array', items: { type: 'string' }, description: 'commands run in order in a fresh container with the checkout in the workdir (network on)' },
    test_command: { type: 'string', description: 'runs the whole test suite (network off) and writes the report file' },
    runner: { type: 'string', enum: Object.keys(RUNNERS) },
  },
  required: ['install_commands', 'test_command', 'runner'],
  additionalProperties: false,
};

const reportPathOf = (runner: RunnerName) => `${REPORT_DIR}/report.${getRunner(runner).reportFormat === 'junit' ? 'xml' : 'json'}`;

/**
 * An {@link EnvAgent} over `llm`. Never throws for the model's behaviour: a run that ends without an
 * accepted submission returns `recipe: null`; LLM or engine errors after the loop's own retries surface
 * as a thrown StageError with their `retriable`.
 */
export function environmentBuilderAgent(llm: LlmClient, opts: EnvAgentOptions = {}): EnvAgent {
  return {
    async propose({ sandbox, candidate, rulesRecipe, failure, signal, testFiles }) {
      const workdir = rulesRecipe?.workdir ?? '/testbed';
      const fields = [
        '- install_commands: string[] — every command needed, in order, starting from the clean base image (Debian bookworm, python3 3.11 / nodejs 18 and npm, git, build tools)',
        `- test_command: string — runs the whole suite from ${workdir} and writes the runner's machine-readable report to ${REPORT_DIR}/report.xml (junit: pytest, vitest, node-test) or ${REPORT_DIR}/report.json (jest --json, mocha json)`,
        `- runner: one of ${Object.keys(RUNNERS).join(', ')}`,
      ].join('\n');
      const attempt = rulesRecipe
        ? `install:\n${rulesRecipe.installCommands.map((c) => `  ${c}`).join('\n')}\ntest: ${rulesRecipe.testCommand}\nresult: ${failure.reason}\n${failure.detail.slice(-3000)}`
        : `no rule-based recipe: ${failure.reason}: ${failure.detail}`;
      const prompt = renderPrompt('environment-builder', {
        repo: candidate.repo,
        language: candidate.language,
        workdir,
        parent_commit: candidate.parent_commit,
        test_files: (testFiles ?? []).slice(0, 50).join('\n') || '(find them)',
        recipe_attempt: attempt,
        submit_fields: fields,
      }, opts.promptVersion);
      const run = await runAgent<Submission>({
        llm,
        system: prompt.system,
        user: prompt.user,
        sandbox,
        workdir,
        submit: {
          description: 'Submit the replayable recipe; it is checked by running the test command here first.',
          parameters: SUBMIT_SCHEMA,
          async validate(sub, ctx) {
            const sb = ctx.sandbox ?? sandbox;
            // The submission must stand on its own: its install commands run here too (mostly no-ops after the
            // agent's own exploration), so a step the agent did by hand but left out is caught before the replay.
            for (const cmd of sub.install_commands) {
              const i = await sb.exec(cmd, { cwd: workdir, timeoutMs: opts.commandTimeoutMs ?? 600_000, signal, maxOutputBytes: 1 << 20 });
              if (i.exitCode !== 0) return `install command failed (exit ${i.exitCode}${i.timedOut ? ', timed out' : ''}): ${cmd}\n${(i.stdout + i.stderr).slice(-2000)}`;
            }
            const reportPath = reportPathOf(sub.runner);
            await sb.exec(`rm -f ${reportPath}`, { timeoutMs: 30_000, signal });
            const r = await sb.exec(sub.test_command, { cwd: workdir, timeoutMs: opts.commandTimeoutMs ?? 600_000, signal, maxOutputBytes: 2 << 20 });
            let report: string | null = null;
            try {
              report = (await sb.readFile(reportPath)).toString('utf8');
            } catch (e) {
              if ((e as { retriable?: boolean }).retriable) throw e;
            }
            const results = getRunner(sub.runner).parse(report, `${r.stdout}\n${r.stderr}`, { workdir });
            if (results.some((t) => t.status === 'PASSED' || t.status === 'FAILED')) return null;
            return `The harness ran your test_command (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}) and parsed ${results.length} results, none passed or failed (report ${report === null ? `missing at ${reportPath}` : 'present'}). Output tail:\n${(r.stdout + r.stderr).slice(-2000)}`;
          },
        },
        budgets: { maxSteps: opts.maxSteps ?? 30, maxTokens: opts.maxTokens ?? 400_000, maxCostUsd: opts.maxCostUsd ?? 1, maxWallMs: opts.maxWallMs ?? 20 * 60_000 },
        commandTimeoutMs: opts.commandTimeoutMs ?? 600_000,
        signal,
      });
      if (run.exitStatus === 'error' && run.error) {
        const e = new Error(`environment-builder agent: ${run.error.message}`) as Error & { retriable: boolean };
        e.name = run.error.name;
        e.retriable = run.error.retriable;
        throw e;
      }
      const sub = run.exitStatus === 'submitted' ? run.submission : null;
      return {
        recipe: sub ? { installCommands: sub.install_commands, testCommand: sub.test_command, runner: sub.runner, reportPath: reportPathOf(sub.runner) } : null,
        model: run.model,
        promptVersion: prompt.version,
        tokensIn: run.tokensIn,
        tokensOut: run.tokensOut,
        costUsd: run.costUsd,
        exitStatus: run.exitStatus,
        steps: run.steps,
      };
    },
  };
}
