/**
 * The composition root: builds each stage from the configuration with its real dependencies (mirror
 * cache, Docker sandbox, LLM clients). Only cli/ knows both the operators and the transports.
 */
import { join } from 'node:path';
import type { Config } from '../streams/config.js';
import type { Stage } from '../streams/stage.js';
import type { StageName } from '../streams/topics.js';
import { MirrorCache } from '../operators/git/mirror.js';
import { filterStage } from '../operators/filter.js';
import { statementStage } from '../operators/statement.js';
import { agentLlm } from '../operators/llm/client.js';

/** Shared, lazily created dependencies of the stages of one process. */
export class Deps {
  private mirrorCache?: MirrorCache;
  constructor(readonly cfg: Config) {}

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
        testCreator: deps.llm('test-creator') !== null,
      });
    case 'statement':
      return statementStage({ writer: deps.llm('statement-writer'), judge: deps.llm('judge'), classifier: deps.llm('classifier') });
    default:
      throw new Error(`stage ${name} is not available in this build`);
  }
}

/** Where a process keeps its non-bus state. */
export const stateDir = (cfg: Config) => join(cfg.dataDir, 'state');
