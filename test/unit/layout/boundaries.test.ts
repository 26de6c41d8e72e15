import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLayout } from '../../helpers/layout.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layout-'));
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}
const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('import boundaries (ARCHITECTURE.md §2)', () => {
  it('the project itself breaks none', () => {
    expect(checkLayout(ROOT)).toEqual([]);
  });

  it('every operator stage file exists at the top of operators/', () => {
    const top = fs.readdirSync(path.join(ROOT, 'operators')).filter((f) => f.endsWith('.ts')).sort();
    expect(top).toEqual(['distill.ts', 'env-build.ts', 'filter.ts', 'statement.ts', 'test-create.ts', 'verify.ts']);
  });

  it.each([
    ['streams importing a connector', { 'streams/pipeline.ts': "import { x } from '../connectors/sources/git.js';", 'connectors/sources/git.ts': '' }, 'streams/ must not import connectors/'],
    ['streams importing an operator (dynamic)', { 'streams/runtime.ts': "const m = await import('../operators/pr/patch.js');", 'operators/pr/patch.ts': '' }, 'streams/ must not import operators/'],
    ['operators importing cli (re-export)', { 'operators/verify.ts': "export { y } from '../cli/config.js';", 'cli/config.ts': '' }, 'operators/ must not import cli/'],
    ['a tool importing a stage', { 'operators/env/agent.ts': "import type { A } from '../env-build.js';", 'operators/env-build.ts': '' }, 'a tool folder of operators/ must not import a stage file'],
    ['an operator importing a transport', { 'operators/filter.ts': "import { K } from '../streams/transports/kafka.js';", 'streams/transports/kafka.ts': '' }, 'operators/ must not import a transport or serde'],
    ['a connector importing a stage', { 'connectors/sinks/rows.ts': "import { v } from '../../operators/verify.js';", 'operators/verify.ts': '' }, 'connectors/ may import operators/ only through operators/pr/'],
    ['a helper at the top of operators/', { 'operators/util.ts': 'export const a = 1;' }, 'operators/ holds only the six stage files at its top level'],
  ])('fails on %s', (_name, files, rule) => {
    const dir = tree(files as Record<string, string>);
    made.push(dir);
    const v = checkLayout(dir);
    expect(v.map((x) => x.rule).join('\n')).toContain(rule);
  });

  it('passes the allowed directions and ignores look-alikes in comments', () => {
    const dir = tree({
      'cli/main.ts': "import { a } from '../connectors/sinks/rows.js';\nimport { b } from '../streams/runtime.js';",
      'connectors/sinks/rows.ts': "import { c } from '../../operators/pr/patch.js';\n// import { v } from '../../operators/verify.js';",
      'operators/verify.ts': "import { d } from './harness/grading.js';\nimport { e } from '../streams/stage.js';",
      'operators/harness/grading.ts': "import type { T } from '../../schemas/types.gen.js';",
    });
    made.push(dir);
    expect(checkLayout(dir)).toEqual([]);
  });
});
