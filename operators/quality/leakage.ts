/**
 * The leakage gate for problem statements (ARCHITECTURE.md §7, issue 6). A statement must describe the
 * behaviour to fix without giving away where or how; this gate looks for five kinds of evidence that it does:
 *
 * | kind            | what is matched in the statement                                                     | weight |
 * |-----------------|--------------------------------------------------------------------------------------|--------|
 * | patch-line      | a line the gold patch adds, whitespace-normalised, ≥ 20 characters (also matched     | 1.0    |
 * |                 | with all whitespace removed, so reformatted quotes count); lines with no word are data |        |
 * | test-name       | a FAIL_TO_PASS test: its id, test function/class name, or a test title ≥ 20 chars    | 1.0    |
 * | file-path       | a path the patch (code or tests) touches, a ≥ 2-segment suffix of it, a distinctive   | 0.5    |
 * |                 | basename (not index.js/__init__.py/utils.py…), or a private dotted module (`attr._make`)|        |
 * | identifier      | a name the patch defines or whose body it changes (def/class/function/const/method)  | 0.3    |
 * |                 | — except public API the tests call (the statement must name it, SWE-bench style)     |        |
 * | string-literal  | a string literal (≥ 8 chars, not identifier-shaped) the gold patch adds — except     | 0.3    |
 * |                 | literals the tests use (an asserted error message is specified behaviour)            |        |
 * | line-number     | `line N` / `L N` / `:N` on a line naming a changed file (basename included), N in    | 0.3    |
 * |                 | one of that file's hunks                                                             |        |
 * | test-command    | the task's test command (≥ 10 chars), as given in `testCommands`                     | 0.5    |
 * The first five are ARCHITECTURE.md §7's list; the last two cover the issue's "never line numbers or test
 * commands" rule for written statements.
 *
 * score = 1 − Π(1 − weight) over the distinct evidence (0 = clean, → 1 = much evidence). `strong` is true when
 * a code line of the patch or a test name is quoted: those are unambiguous leaks even in a human-written issue.
 *
 * Precision rules (a clean issue must not be flagged for common words): identifiers that are plain lowercase
 * words (`value`, `count`) only count in code context (backticks, `.name`, `name(`); identifiers shorter than
 * 3 characters, dunder methods, and `constructor` never count; basenames that are common across projects never
 * count alone. Matching is case-sensitive for identifiers and paths, case-insensitive for test titles.
 * Works on unified diffs of Python and JavaScript/TypeScript (and roughly for C-like languages).
 */
import { parseDiff, type FileDiff } from '../pr/patch.js';
import type { LeakEvidence } from '../../schemas/types.gen.js';

/** LeakEvidence.kind values. */
export type LeakKind = 'patch-line' | 'file-path' | 'identifier' | 'test-name' | 'string-literal' | 'line-number' | 'test-command';

/** Inputs: the statement and what it must not reveal. Patches are unified diffs (`git diff`). */
export interface LeakageInput {
  statement: string;
  /** the gold (code) patch */
  patch: string;
  /** the test patch (its file paths are secret too; its identifiers and literals are public API) */
  testPatch?: string;
  /** FAIL_TO_PASS test ids (pytest `path::Class::test`, jest/vitest `file > describe > title`, …) */
  failToPass?: string[];
  /** extra names the statement may use (e.g. public API found another way) */
  allow?: string[];
  /** commands that run the task's tests (TestSpec.test_command, Verification.eval_command) */
  testCommands?: string[];
}

/** The gate's verdict on one statement. */
export interface LeakageResult {
  /** 0…1, see the table above */
  score: number;
  evidence: LeakEvidence[];
  flagged: boolean;
  /** a code line of the fix or a FAIL_TO_PASS test name is in the statement */
  strong: boolean;
}

/** Weight of each kind in the score (see the table in the file comment). */
export const LEAK_WEIGHTS: Record<LeakKind, number> = {
  'patch-line': 1,
  'test-name': 1,
  'file-path': 0.5,
  identifier: 0.3,
  'string-literal': 0.3,
  'line-number': 0.3,
  'test-command': 0.5,
};

/** Basenames too common to identify a file on their own. */
const GENERIC_BASENAMES = new Set([
  '__init__.py', '__main__.py', 'main.py', 'utils.py', 'util.py', 'helpers.py', 'base.py', 'core.py', 'types.py', 'setup.py',
  'conftest.py', 'compat.py', 'config.py', 'constants.py', 'exceptions.py', 'errors.py', 'models.py', 'views.py', 'settings.py',
  'index.js', 'index.ts', 'index.mjs', 'index.cjs', 'index.tsx', 'index.jsx', 'index.d.ts', 'main.js', 'main.ts', 'utils.js',
  'utils.ts', 'util.js', 'util.ts', 'types.ts', 'constants.js', 'constants.ts', 'config.js', 'config.ts', 'package.json',
  'readme.md', 'changelog.md', 'readme.rst', 'changes.rst', 'history.md',
]);

const NEVER_IDENTIFIERS = new Set([
  'constructor', 'default', 'exports', 'module', 'self', 'this', 'cls', 'args', 'kwargs', 'props', 'state', 'options', 'opts',
  'result', 'value', 'data', 'name', 'key', 'index', 'item', 'items', 'error', 'err', 'test', 'tests', 'main', 'init',
  'get', 'set', 'run', 'call', 'apply', 'then', 'type', 'string', 'number', 'object', 'function', 'return', 'async', 'await',
  // keywords of Python and JS/TS: never names, but docstring/comment lines can look like assignments
  'and', 'not', 'for', 'while', 'with', 'from', 'import', 'lambda', 'pass', 'yield', 'class', 'def', 'del', 'elif', 'else',
  'except', 'finally', 'global', 'nonlocal', 'raise', 'try', 'assert', 'break', 'continue', 'None', 'True', 'False',
  'const', 'let', 'var', 'new', 'delete', 'typeof', 'instanceof', 'void', 'this', 'super', 'null', 'undefined', 'true', 'false',
  'export', 'extends', 'implements', 'interface', 'static', 'public', 'private', 'protected', 'case', 'switch', 'throw', 'catch',
]);

/** Collapse whitespace runs to one space and trim. */
export function normalise(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** True when `needle` occurs in `hay` not glued to identifier characters on either side. */
function hasWord(hay: string, needle: string): boolean {
  return new RegExp(`(?<![A-Za-z0-9_$])${escapeRe(needle)}(?![A-Za-z0-9_$])`).test(hay);
}

/** True when `name` occurs in code context: in backticks, after a dot, or directly followed by `(` (prose puts a space before parentheses). */
function hasCodeWord(hay: string, name: string): boolean {
  const n = escapeRe(name);
  if (new RegExp(`\\.${n}(?![A-Za-z0-9_$])|(?<![A-Za-z0-9_$])${n}\\(`).test(hay)) return true;
  // Single-line inline code spans, paired left to right (one regex over the whole text would pair a closing
  // backtick with the next opening one). Fenced blocks are left out: they hold logs and tracebacks full of words.
  const text = hay.replace(/^\s*(```|~~~)[\s\S]*?^\s*\1/gm, '');
  for (const line of text.split('\n')) for (const m of line.matchAll(/(?<!`)`([^`]+)`(?!`)/g)) if (hasWord(m[1]!, name)) return true;
  return false;
}

const isPlainWord = (id: string) => /^[a-z]+$/.test(id);

const DEF_PATTERNS: RegExp[] = [
  /^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)/, // Python def
  /^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+([A-Za-z_$][\w$]*)/, // Python/JS/TS class
  /\bfunction\s*\*?\s*([A-Za-z_$][\w$]*)/, // JS function declaration
  /^\s*(?:export\s+)?(?:declare\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)/, // JS binding
  /^\s*(?:export\s+)?(?:interface|type|enum)\s+([A-Za-z_$][\w$]*)/, // TS types
  /(?:^|\.)([A-Za-z_$][\w$]*)\s*=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)/, // x = function / arrow
  /^\s*([A-Za-z_$][\w$]*)\s*:\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)/, // x: function / x: (a) => / x: a =>
  /^\s*(?:(?:public|private|protected|static|async|get|set|override|readonly)\s+)*([A-Za-z_$][\w$]*)\s*\([^)]*\)\s*(?::\s*[^{=]+)?\{\s*$/, // method shorthand
  /^\s*([A-Za-z_][\w]*)\s*(?::\s*[^=]+)?=(?!=)/, // Python assignment / attribute at line start
  /^\s*(?:this|self)\.([A-Za-z_$][\w$]*)\s*=(?!=)/, // attribute assignment
];
/** A line that opens a function/class/method body (so changes below it change that definition). */
const DEF_HEADER = /^\s*(?:async\s+)?(?:def|class)\s|\bfunction\b|=>\s*\{?\s*$|^\s*(?:(?:public|private|protected|static|async|get|set|override)\s+)*[A-Za-z_$][\w$]*\s*\([^)]*\)\s*(?::\s*[^{=]+)?\{\s*$/;
const CONTROL_WORDS = new Set(['if', 'for', 'while', 'switch', 'catch', 'return', 'with', 'elif', 'else', 'function', 'typeof', 'new', 'await', 'super']);

/** Names defined on one line of code (def/class/function/binding/method/assignment). */
export function definedNames(line: string): string[] {
  const out = new Set<string>();
  for (const re of DEF_PATTERNS) {
    const m = re.exec(line);
    if (m?.[1] && !CONTROL_WORDS.has(m[1])) out.add(m[1]);
  }
  return [...out];
}

/**
 * Identifiers the gold patch adds or changes: names defined on added or removed lines, and the enclosing
 * function/class of each hunk (from the `@@ … @@ context` header and the nearest definition among the hunk's
 * leading context lines). Dunder names, names shorter than 3 characters and {@link NEVER_IDENTIFIERS} are left out.
 */
export function changedIdentifiers(files: FileDiff[]): string[] {
  const out = new Set<string>();
  for (const f of files) {
    for (const h of f.hunks) {
      const ctx = /^@@[^@]*@@\s?(.*)$/.exec(h.header)?.[1] ?? '';
      for (const n of definedNames(ctx)) out.add(n);
      let enclosing: string | undefined;
      for (const l of h.lines) {
        if (l.type === ' ') {
          if (DEF_HEADER.test(l.text)) enclosing = definedNames(l.text)[0] ?? enclosing;
          continue;
        }
        if (enclosing) { out.add(enclosing); enclosing = undefined; }
        for (const n of definedNames(l.text)) out.add(n);
      }
    }
  }
  return [...out].filter((n) => n.length >= 3 && !/^__\w+__$/.test(n) && !NEVER_IDENTIFIERS.has(n));
}

/** All identifier tokens in the added lines of a patch (what tests reference = public API). */
function tokensOfAdded(files: FileDiff[]): Set<string> {
  const out = new Set<string>();
  for (const f of files) for (const h of f.hunks) for (const l of h.lines) if (l.type === '+') for (const m of l.text.matchAll(/[A-Za-z_$][\w$]*/g)) out.add(m[0]);
  return out;
}

/** String literals on added lines ('…', "…", `…` without ${}) with their text, ≥ 8 characters after trimming, not identifier-shaped, not also on a removed line. */
export function addedStringLiterals(files: FileDiff[]): string[] {
  const added = new Set<string>();
  const removed = new Set<string>();
  for (const f of files)
    for (const h of f.hunks)
      for (const l of h.lines) {
        if (l.type === ' ') continue;
        for (const m of l.text.matchAll(/(?<![\w])(?:[rbfuRBFU]{0,2})("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\\n$]|\\.)*`)/g)) {
          const body = m[1]!.slice(1, -1).trim();
          // identifier-shaped literals (`__all__` entries, keys) are judged as identifiers, not as text
          if (body.length >= 8 && !/^\.?[A-Za-z_$][\w$.]*(\(\))?$/.test(body)) (l.type === '+' ? added : removed).add(body);
        }
      }
  return [...added].filter((s) => !removed.has(s));
}

/** Public API the statement may (and for new API should) name: changed/added identifiers the test patch references. */
export function publicApiNames(patch: string, testPatch: string): string[] {
  const tests = tokensOfAdded(parseDiff(testPatch));
  return changedIdentifiers(parseDiff(patch)).filter((n) => tests.has(n));
}

/** Path forms that identify a file: the path, its ≥ 2-segment suffixes, a distinctive basename, a private Python module path (`pkg._impl`). */
export function pathForms(path: string): string[] {
  const segs = path.split('/').filter(Boolean);
  const forms = new Set<string>([path]);
  for (let i = 1; i < segs.length - 1; i++) forms.add(segs.slice(i).join('/'));
  const base = segs.at(-1) ?? '';
  if (base.includes('.') && !GENERIC_BASENAMES.has(base.toLowerCase()) && base.length >= 6) forms.add(base);
  if (path.endsWith('.py')) {
    const mod = segs.filter((s) => s !== 'src' && s !== 'lib').join('.').replace(/\.py$/, '').replace(/\.__init__$/, '');
    // `attr.validators` is public API users write in issues; `attr._make` is an internal location.
    if (mod.split('.').length >= 2 && mod.split('.').some((m) => m.startsWith('_'))) forms.add(mod);
  }
  return [...forms];
}

function hasPath(hay: string, form: string): boolean {
  // Not glued to identifier characters on either side. A multi-segment form may follow a `/` (an absolute path in a
  // traceback ends with it); a bare basename may not (`other/more.py` is another file).
  const left = form.includes('/') ? '(?<![A-Za-z0-9_$.-])' : '(?<![A-Za-z0-9_$/.-])';
  return new RegExp(`${left}${escapeRe(form)}(?![A-Za-z0-9_$])`).test(hay);
}

/**
 * Pieces of a FAIL_TO_PASS id worth matching: test function/class names, titles ≥ 20 characters anywhere, and
 * shorter titles (≥ 8) only when quoted — "is between" is prose, `"is between"` names the test.
 */
function testNameForms(id: string): Array<{ form: string; title: boolean; quotedOnly?: boolean }> {
  const out: Array<{ form: string; title: boolean; quotedOnly?: boolean }> = [];
  for (let seg of id.split(/::| > | › |\s+»\s+/)) {
    seg = seg.replace(/\[.*\]$/, '').trim();
    if (!seg || (!/\s/.test(seg) && (/[/\\]/.test(seg) || /\.(py|[cm]?[jt]sx?)$/.test(seg)))) continue; // file part: file-path checks cover it
    if (/\s/.test(seg)) {
      if (seg.length >= 20) out.push({ form: seg, title: true });
      else if (seg.length >= 8) out.push({ form: seg, title: true, quotedOnly: true });
    } else if (/^[A-Za-z_$][\w$]*$/.test(seg) && (seg.length >= 6 || /test/i.test(seg))) out.push({ form: seg, title: false });
  }
  return out;
}

const CODE_LINE = /[()[\]{}=;]|^\s*(return|raise|throw|import|from|if|for|while|yield|await|del|assert)\b/;

/**
 * Run the gate. Pure and fast (regexes over the statement); never throws for odd input (an unparseable patch
 * yields no patch evidence).
 */
export function checkLeakage(input: LeakageInput): LeakageResult {
  const st = input.statement;
  const stNorm = normalise(st);
  const stLower = stNorm.toLowerCase();
  const stCompact = stNorm.replace(/\s+/g, '');
  const gold = parseDiff(input.patch);
  const tests = parseDiff(input.testPatch ?? '');
  const evidence: LeakEvidence[] = [];
  const seen = new Set<string>();
  let strong = false;
  const add = (kind: LeakKind, match: string) => {
    const k = `${kind}\u0000${match}`;
    if (seen.has(k)) return;
    seen.add(k);
    evidence.push({ kind, match });
  };

  // patch-line: added code lines not merely moved (also present as removed lines)
  const removed = new Set(gold.flatMap((f) => f.hunks.flatMap((h) => h.lines.filter((l) => l.type === '-').map((l) => normalise(l.text)))));
  for (const f of gold)
    for (const h of f.hunks)
      for (const l of h.lines) {
        if (l.type !== '+') continue;
        const n = normalise(l.text);
        // Lines without a word (expected-output rows like `[(1, 2, 0), (2, 0, 1)]`) are data a statement may specify.
        if (n.length < 20 || removed.has(n) || !/[A-Za-z_]{3}/.test(n)) continue;
        // Compare without any whitespace too: `if n<0:` quotes `if n < 0:` just the same.
        const compact = n.replace(/\s+/g, '');
        if (stNorm.includes(n) || (compact.length >= 20 && stCompact.includes(compact))) {
          add('patch-line', n);
          if (CODE_LINE.test(n)) strong = true;
        }
      }

  // file-path: code and test files (test files reveal the tests)
  for (const f of [...gold, ...tests])
    for (const p of new Set([f.path, f.oldPath]))
      for (const form of pathForms(p)) if (hasPath(st, form)) { add('file-path', form); break; }

  // test-name
  for (const id of input.failToPass ?? []) {
    if (id.length >= 8 && stNorm.includes(normalise(id))) { add('test-name', id); strong = true; continue; }
    for (const { form, title, quotedOnly } of testNameForms(id)) {
      const f = normalise(form).toLowerCase();
      const hit = quotedOnly
        ? ['"', "'", '`', '“'].some((q) => stLower.includes(`${q}${f}${q === '“' ? '”' : q}`))
        : title ? stLower.includes(f) : hasWord(st, form);
      if (hit) { add('test-name', form); strong = true; }
    }
  }

  // identifier (public API the tests call is allowed)
  const testTokens = tokensOfAdded(tests);
  const allow = new Set(input.allow ?? []);
  const testIdWords = new Set((input.failToPass ?? []).flatMap((id) => id.split(/[^A-Za-z0-9_$]+/)));
  for (const id of changedIdentifiers(gold)) {
    // plain substring test first: most names are absent, and building a regex per name is what costs on big patches
    if (!st.includes(id) || testTokens.has(id) || allow.has(id) || seen.has(`test-name\u0000${id}`) || testIdWords.has(id)) continue;
    if (isPlainWord(id) ? hasCodeWord(st, id) : hasWord(st, id)) add('identifier', id);
  }

  // string-literal (literals the tests use are the specified behaviour, e.g. an error message)
  const testText = input.testPatch ?? '';
  for (const lit of addedStringLiterals(gold)) {
    if (testText.includes(lit)) continue;
    if (stNorm.includes(normalise(lit))) add('string-literal', lit);
  }

  // line-number: on a statement line that names a changed file, a line reference inside one of that file's
  // hunks (old or new side, ±3 lines of context). A bare "line 12" is left alone: it is usually the reporter's script.
  const lineRe = /\b(?:lines?|L)\s?#?(\d{1,6})\b|[:#](\d{1,6})\b/g;
  for (const f of gold) {
    const ranges = f.hunks.flatMap((h) => {
      const m = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(h.header);
      if (!m) return [];
      const span = (start: number, len: number) => [Math.max(1, start - 3), start + Math.max(len, 1) + 3] as const;
      return [span(+m[1]!, m[2] === undefined ? 1 : +m[2]), span(+m[3]!, m[4] === undefined ? 1 : +m[4])];
    });
    const forms = [...pathForms(f.path), f.path.split('/').at(-1)!];
    for (const line of st.split('\n')) {
      if (!forms.some((form) => hasPath(line, form))) continue;
      for (const m of line.matchAll(lineRe)) {
        const n = Number(m[1] ?? m[2]);
        if (ranges.some(([a, b]) => n >= a && n <= b)) add('line-number', m[0]);
      }
    }
  }

  // test-command
  for (const cmd of input.testCommands ?? []) {
    const n = normalise(cmd);
    if (n.length >= 10 && stNorm.includes(n)) add('test-command', n);
  }

  const score = 1 - evidence.reduce((p, e) => p * (1 - LEAK_WEIGHTS[e.kind as LeakKind]), 1);
  return { score: Math.round(score * 1000) / 1000, evidence, flagged: evidence.length > 0, strong };
}
