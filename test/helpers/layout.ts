/**
 * The import rules of the layout (ARCHITECTURE.md §2), checked over a source tree:
 *   cli/ → connectors/ → operators/ → streams/ → schemas/, one way only;
 *   streams/ (the engine) imports only streams/ and schemas/;
 *   operators/ never imports a transport or serde (streams/transports/, streams/serde*);
 *   a tool folder of operators/ never imports a stage file (operators/<stage>.ts);
 *   connectors/ reaches into operators/ only through operators/pr/;
 *   operators/ holds the six stage files at its top level and nothing else.
 * Imports are read with TypeScript's own pre-processor (static, dynamic and `export … from`), so a
 * comment or a string that looks like an import is not one.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** One import that breaks a rule: the importing file, the imported file (both relative to the root), the rule. */
export interface Violation {
  from: string;
  to: string;
  rule: string;
}

const LAYERS = ['schemas', 'streams', 'operators', 'connectors', 'cli'] as const;
type Layer = (typeof LAYERS)[number];
const SOURCE_DIRS: readonly Layer[] = LAYERS;
/** The six stages (ARCHITECTURE.md §1). */
export const STAGE_FILES = ['filter', 'env-build', 'test-create', 'verify', 'statement', 'distill'].map((s) => `operators/${s}.ts`);

const layerOf = (rel: string): Layer | null => {
  const top = rel.split('/')[0];
  return (LAYERS as readonly string[]).includes(top) ? (top as Layer) : null;
};

function listTs(root: string, dir: string): string[] {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')));
}

/** Relative imports of one file, resolved to root-relative `.ts` paths (non-relative specifiers are packages). */
function importsOf(root: string, rel: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(path.join(root, rel), 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((s) => s.startsWith('.'))
    .map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(rel), s)).replace(/\.js$/, '.ts'));
}

function ruleFor(from: string, to: string): string | null {
  const a = layerOf(from);
  const b = layerOf(to);
  if (!a || !b) return null;
  if (LAYERS.indexOf(b) > LAYERS.indexOf(a)) return `${a}/ must not import ${b}/ (imports go cli → connectors → operators → streams → schemas)`;
  if (a === 'operators' && /^streams\/(transports\/|serde)/.test(to)) return 'operators/ must not import a transport or serde';
  const fromTool = a === 'operators' && from.split('/').length > 2;
  if (fromTool && STAGE_FILES.includes(to)) return 'a tool folder of operators/ must not import a stage file';
  if (a === 'connectors' && b === 'operators' && !to.startsWith('operators/pr/')) return 'connectors/ may import operators/ only through operators/pr/';
  return null;
}

/** Every import under `root` that breaks a rule, plus files at the top of operators/ that are not stages. */
export function checkLayout(root: string): Violation[] {
  const out: Violation[] = [];
  for (const dir of SOURCE_DIRS) {
    for (const from of listTs(root, dir)) {
      if (dir === 'operators' && from.split('/').length === 2 && !STAGE_FILES.includes(from)) {
        out.push({ from, to: from, rule: 'operators/ holds only the six stage files at its top level' });
      }
      for (const to of importsOf(root, from)) {
        const rule = ruleFor(from, to);
        if (rule) out.push({ from, to, rule });
      }
    }
  }
  return out;
}
