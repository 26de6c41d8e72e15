/**
 * The composition root: builds each stage from the configuration with its real dependencies (mirror
 * cache, Docker sandbox, LLM clients). Only cli/ knows both the operators and the transports.
 */
import { join } from 'node:path';
import type { Config } from './config.js';
import type { Stage } from '../streams/stage.js';
import type { StageName } from '../streams/topics.js';
import { MirrorCache } from '../operators/pr/mirror.js';
import { filterStage } from '../operators/filter.js';
import { statementStage } from '../operators/statement.js';
import { agentLlm } from '../operators/llm/client.js';
import { envBuildStage } from '../operators/env-build.js';
import { environmentBuilderAgent } from '../operators/env/agent.js';
import { testCreateStage, testCreatorAgent } from '../operators/test-create.js';
import { verifyStage } from '../operators/verify.js';
import { distillStage } from '../operators/distill.js';
import { evaluate } from '../operators/harness/evaluate.js';
import { DockerSandboxFactory } from '../operators/sandbox/docker.js';
import type { SandboxFactory } from '../operators/sandbox/types.js';

/** Shared, lazily created dependencies of the stages of one process. */
export class Deps {
  private mirrorCache?: MirrorCache;
  private sandboxFactory?: SandboxFactory;
  constructor(readonly cfg: Config) {}

  /** Docker sandboxes with the configured limits (DOCKER_HOST or the local socket). */
  get sandboxes(): SandboxFactory {
    this.sandboxFactory ??= new DockerSandboxFactory({
      memoryBytes: this.cfg.sandbox.memoryBytes,
      nanoCpus: Math.round(this.cfg.sandbox.cpus * 1e9),
      pidsLimit: this.cfg.sandbox.pidsLimit,
    });
    return this.sandboxFactory;
  }

  get mirrors(): MirrorCache {
    this.mirrorCache ??= new MirrorCache({ dataDir: this.cfg.dataDir, network: this.cfg.mirrors.network });
    return this.mirrorCache;
  }

  llm(agent: Parameters<typeof agentLlm>[1]) {
    return agentLlm(this.cfg.llm, agent);
  }
}

/**
 * Build one stage.
 * @throws Error for a stage whose dependencies cannot be created (e.g. no Docker engine for env-build).
 */
export async function buildStage(name: StageName, deps: Deps): Promise<Stage<any, any>> {
  const cfg = deps.cfg;
  switch (name) {
    case 'filter':
      return filterStage({
        mirrors: deps.mirrors,
        dataDir: cfg.dataDir,
        maxFiles: cfg.filter.maxFiles,
        maxChangedLines: cfg.filter.maxChangedLines,
        languages: cfg.filter.languages,
        licenses: cfg.filter.licenses,
        testCreator: deps.llm('test-creator') !== null,
      });
    case 'env-build': {
      const llm = deps.llm('environment-builder');
      return envBuildStage({
        agent: llm ? environmentBuilderAgent(llm) : null,
        sandboxes: deps.sandboxes,
        repoPath: (c, signal) => deps.mirrors.ensure(c.repo, c.clone_url, { want: [c.parent_commit], signal }).then((m) => m.path),
        installTimeoutMs: cfg.sandbox.installTimeoutMs,
        suiteTimeoutMs: cfg.sandbox.testTimeoutMs,
      });
    }
    case 'test-create': {
      const llm = deps.llm('test-creator');
      return testCreateStage({ createTest: llm ? testCreatorAgent({ llm, sandboxes: deps.sandboxes }) : undefined });
    }
    case 'verify':
      return verifyStage({ sandboxes: deps.sandboxes, runTimeoutMs: cfg.sandbox.testTimeoutMs });
    case 'statement':
      return statementStage({ writer: deps.llm('statement-writer'), judge: deps.llm('judge'), classifier: deps.llm('classifier'), sandboxes: deps.llm('statement-writer') ? deps.sandboxes : null });
    case 'distill': {
      const solver = deps.llm('solver');
      return distillStage({
        solver,
        sandboxes: solver ? deps.sandboxes : null,
        grade: async (task, patch, signal) => {
          const [r] = await evaluate({ predictions: [{ instance_id: task.instance_id, model_patch: patch }], rows: [task], sandboxes: deps.sandboxes, signal });
          return r?.resolved === true;
        },
      });
    }
  }
}

/** Where a process keeps its non-bus state. */
export const stateDir = (cfg: Config) => join(cfg.dataDir, 'state');
