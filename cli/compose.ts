/**
 * The composition root: builds each stage from the configuration with its real dependencies (mirror
 * cache, Docker sandbox, LLM clients). Only cli/ knows both the operators and the transports.
 */
import { join } from 'node:path';
import type { Config } from './config.js';
import type { PrStage, StageName } from '../operators/pr/topology.js';
import { MirrorCache } from '../operators/pr/mirror.js';
import type { GitCredentials } from '../operators/pr/git-exec.js';
import { filterStage } from '../operators/filter.js';
import { statementStage } from '../operators/statement.js';
import { agentLlm } from '../operators/llm/client.js';
import { envBuildStage } from '../operators/env-build.js';
import { environmentBuilderAgent } from '../operators/env/agent.js';
import { testCreateStage, testCreatorAgent } from '../operators/test-create.js';
import { verifyStage } from '../operators/verify.js';
import { distillStage, DISTILL_ATTEMPTS_STORE } from '../operators/distill.js';
import { evaluate } from '../operators/harness/evaluate.js';
import { DockerSandboxFactory } from '../operators/sandbox/docker.js';
import type { SandboxFactory } from '../operators/sandbox/types.js';
import type { StoreFactory } from '../streams/store.js';
import { PATCH_SEEN_STORE } from '../operators/filter.js';

/** Shared, lazily created dependencies of the stages of one process. */
export class Deps {
  private mirrorCache?: MirrorCache;
  private sandboxFactory?: SandboxFactory;
  /**
   * @param stores the bus's keyed stores (`(ns) => transport.openStore(ns)`): stage state that must survive a
   * move to another machine lives there; commands that build no stateful stage may leave it out
   * @param opts.credentials git credentials split off the `git:` source URLs (cli/common.ts planSources), kept in memory only
   */
  constructor(readonly cfg: Config, private readonly stores?: StoreFactory, private readonly opts: { credentials?: GitCredentials } = {}) {}

  /** The keyed store of `namespace` on the bus. @throws Error when this process was composed without a bus */
  store(namespace: string) {
    if (!this.stores) throw new Error(`store ${namespace} needs the bus: compose Deps with the transport's openStore`);
    return this.stores(namespace);
  }

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
    this.mirrorCache ??= new MirrorCache({ dataDir: this.cfg.dataDir, network: this.cfg.mirrors.network, localPaths: this.cfg.mirrors.localPaths, credentials: this.opts.credentials });
    return this.mirrorCache;
  }

  llm(agent: Parameters<typeof agentLlm>[1]) {
    return agentLlm(this.cfg.llm, agent);
  }
}

/** How to build each stage: typed against its topics, so a stage whose records do not match them does not compile. */
const BUILDERS: { [S in StageName]: (deps: Deps) => PrStage<S> | Promise<PrStage<S>> } = {
  filter: async (deps) =>
    filterStage({
      mirrors: deps.mirrors,
      seen: await deps.store(PATCH_SEEN_STORE),
      maxFiles: deps.cfg.filter.maxFiles,
      maxChangedLines: deps.cfg.filter.maxChangedLines,
      maxDiffBytes: deps.cfg.filter.maxDiffBytes,
      languages: deps.cfg.filter.languages,
      licenses: deps.cfg.filter.licenses,
      testCreator: deps.llm('test-creator') !== null,
    }),
  'env-build': (deps) => {
    const llm = deps.llm('environment-builder');
    return envBuildStage({
      agent: llm ? environmentBuilderAgent(llm) : null,
      sandboxes: deps.sandboxes,
      repoPath: (c, signal) => deps.mirrors.ensure(c.repo, c.clone_url, { want: [c.parent_commit], signal }).then((m) => m.path),
      installTimeoutMs: deps.cfg.sandbox.installTimeoutMs,
      suiteTimeoutMs: deps.cfg.sandbox.testTimeoutMs,
    });
  },
  'test-create': (deps) => {
    const llm = deps.llm('test-creator');
    return testCreateStage({ createTest: llm ? testCreatorAgent({ llm, sandboxes: deps.sandboxes }) : undefined });
  },
  verify: (deps) => verifyStage({ sandboxes: deps.sandboxes, runTimeoutMs: deps.cfg.sandbox.testTimeoutMs }),
  statement: (deps) =>
    statementStage({ writer: deps.llm('statement-writer'), judge: deps.llm('judge'), classifier: deps.llm('classifier'), sandboxes: deps.llm('statement-writer') ? deps.sandboxes : null }),
  distill: async (deps) => {
    const solver = deps.llm('solver');
    return distillStage({
      solver,
      sandboxes: solver ? deps.sandboxes : null,
      attemptsStore: solver ? await deps.store(DISTILL_ATTEMPTS_STORE) : null,
      grade: async (task, patch, signal) => {
        const [r] = await evaluate({ predictions: [{ instance_id: task.instance_id, model_patch: patch }], rows: [task], sandboxes: deps.sandboxes, timeoutMs: deps.cfg.sandbox.testTimeoutMs, signal });
        return r?.resolved === true;
      },
    });
  },
};

/**
 * Build one stage, typed by its name against the PR topology's topics.
 * @throws Error for a stage whose dependencies cannot be created (e.g. no Docker engine for env-build).
 */
export async function buildStage<S extends StageName>(name: S, deps: Deps): Promise<PrStage<S>> {
  return BUILDERS[name](deps);
}

/** Where a process keeps its non-bus state. */
export const stateDir = (cfg: Config) => join(cfg.dataDir, 'state');
