/**
 * Versioned prompt files (prompts/<agent>.v<N>.md). A prompt's version (`statement-writer.v1`) is recorded with
 * every output it produced (Provenance.prompt_version, Statement.prompt_version, Trajectory.prompt_version), so a
 * prompt is never edited in place once used: copy it to v<N+1>.
 *
 * File format: markdown with top-level sections `# system` and `# user` (required, in that order) and any
 * further `# <name>` sections for follow-up messages, each holding a template. Only level-1 headings split
 * sections, so templates use `##` and deeper.
 * Placeholders are `{{name}}`; rendering fails on a placeholder with no value so a prompt never ships a
 * literal `{{…}}` to a model. Everything before `# system` is a maintainers' note, never sent.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Directory of the prompt files: $SWE_STREAM_PROMPTS_DIR, else <project>/prompts — found from this file both when
 * run from source (operators/llm/) and when compiled (dist/operators/llm/, where tsc does not copy the .md files).
 */
export const PROMPTS_DIR = ((): string => {
  if (process.env.SWE_STREAM_PROMPTS_DIR) return process.env.SWE_STREAM_PROMPTS_DIR;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', 'prompts'), join(here, '..', '..', '..', 'prompts')];
  return candidates.find((d) => existsSync(d)) ?? candidates[0]!;
})();

/** A loaded prompt file: its templates, not yet rendered. */
export interface Prompt {
  /** agent name, e.g. `solver` */
  name: string;
  /** `solver.v1` — what gets recorded */
  version: string;
  system: string;
  user: string;
  /** every `# <name>` section, system and user included (agents may keep follow-up templates, e.g. `# rewrite`) */
  sections: Record<string, string>;
}

/** Rendered messages of a prompt. */
export interface RenderedPrompt {
  version: string;
  system: string;
  user: string;
}

const cache = new Map<string, Prompt>();

/**
 * Load prompts/<name>.v<version>.md, or the highest version present when `version` is omitted.
 * @throws Error when no such file exists or it lacks the `# system` / `# user` sections.
 */
export function loadPrompt(name: string, version?: number, dir = PROMPTS_DIR): Prompt {
  let v = version;
  if (v === undefined) {
    const re = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.v(\\d+)\\.md$`);
    const versions = readdirSync(dir).map((f) => re.exec(f)?.[1]).filter((x): x is string => !!x).map(Number);
    if (versions.length === 0) throw new Error(`no prompt file prompts/${name}.v<N>.md in ${dir}`);
    v = Math.max(...versions);
  }
  const key = `${dir}\u0000${name}.v${v}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const text = readFileSync(join(dir, `${name}.v${v}.md`), 'utf8');
  const heads = [...text.matchAll(/^# ([A-Za-z][\w-]*)[ \t]*$/gm)];
  const sections: Record<string, string> = {};
  heads.forEach((h, i) => {
    sections[h[1]!] = text.slice(h.index! + h[0].length, i + 1 < heads.length ? heads[i + 1]!.index : text.length).trim();
  });
  const order = heads.map((h) => h[1]);
  if (sections.system === undefined || sections.user === undefined || order.indexOf('user') < order.indexOf('system'))
    throw new Error(`prompt ${name}.v${v}.md needs a '# system' section followed by a '# user' section`);
  const prompt: Prompt = { name, version: `${name}.v${v}`, system: sections.system, user: sections.user, sections };
  cache.set(key, prompt);
  return prompt;
}

/**
 * Substitute `{{name}}` placeholders. Values are inserted verbatim (no escaping: prompts are plain text).
 * @throws Error naming the first placeholder without a value.
 */
export function renderTemplate(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, k: string) => {
    const val = vars[k];
    if (val === undefined) throw new Error(`prompt placeholder {{${k}}} has no value`);
    return String(val);
  });
}

/** Load and render both sections of a prompt. @throws as {@link loadPrompt} and {@link renderTemplate}. */
export function renderPrompt(name: string, vars: Record<string, string | number>, version?: number): RenderedPrompt {
  const p = loadPrompt(name, version);
  return { version: p.version, system: renderTemplate(p.system, vars), user: renderTemplate(p.user, vars) };
}

/** Render one named section (e.g. `rewrite`) of a prompt. @throws when the section is missing or a placeholder has no value. */
export function renderSection(name: string, section: string, vars: Record<string, string | number>, version?: number): string {
  const p = loadPrompt(name, version);
  const t = p.sections[section];
  if (t === undefined) throw new Error(`prompt ${p.version} has no '# ${section}' section`);
  return renderTemplate(t, vars);
}
