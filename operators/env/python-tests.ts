/**
 * How a Python repository's tests run: pytest (which also collects unittest and nose-style tests in
 * files pytest discovers) or, where pytest would not find them, unittest; and the repository's pytest
 * `addopts` without the gates that would grade a run of a few selected tests by something other than
 * the tests (issue 11, Grading): coverage (`--cov…`, `--cov-fail-under`), lint and type plugins
 * (`--flake8`, `--mypy`, `--black`, `--pylint`, `--ruff`, …), options that stop early (`-x`,
 * `--maxfail`, `--stepwise`, `--lf`) and quiet flags that would hide the per-test lines.
 *
 * Configuration precedence is pytest's own ("Configuration file formats" in the pytest docs): pytest.ini
 * (even without a [pytest] section), pyproject.toml `[tool.pytest.ini_options]`, tox.ini `[pytest]`,
 * setup.cfg `[tool:pytest]` — the first file that has the section wins.
 */
import { parse as shellParse } from 'shell-quote';
import { parse as parseToml } from 'smol-toml';
import type { Invocation } from '../runners/types.js';
import { shq } from '../runners/util.js';

/** Text of `key` in ini section `[section]`, continuation lines (indented) joined; null when absent. */
export function iniValue(text: string, section: string, key: string): string | null {
  const lines = text.split(/\r?\n/);
  let inSec = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const h = /^\s*\[([^\]]+)\]\s*$/.exec(l);
    if (h) { inSec = h[1]!.trim() === section; continue; }
    if (!inSec) continue;
    const m = new RegExp(`^${key.replace(/[-]/g, '[-_]')}\\s*[=:]\\s*(.*)$`).exec(l);
    if (!m) continue;
    const parts = [m[1]!];
    while (i + 1 < lines.length && /^[ \t]+\S/.test(lines[i + 1]!) && !/^\s*[#;]/.test(lines[i + 1]!)) parts.push(lines[++i]!.trim());
    return parts.join(' ').trim();
  }
  return null;
}

/** Whether ini text has `[section]`. */
function hasSection(text: string | undefined, section: string): boolean {
  return text !== undefined && new RegExp(`^\\s*\\[${section.replace(/[.:]/g, '\\$&')}\\]\\s*$`, 'm').test(text);
}

/** The repository's pytest addopts (words) from the configuration pytest itself would read, or null. */
export function pytestAddopts(contents: Record<string, string>): string[] | null {
  const split = (s: string) => shellParse(s).filter((t): t is string => typeof t === 'string');
  if (contents['pytest.ini'] !== undefined) {
    const v = iniValue(contents['pytest.ini'], 'pytest', 'addopts') ?? iniValue(contents['pytest.ini'], 'tool:pytest', 'addopts');
    return v === null ? null : split(v);
  }
  const py = contents['pyproject.toml'];
  if (py !== undefined && /^\s*\[tool\.pytest\.ini_options\]/m.test(py)) {
    try {
      const doc = parseToml(py) as { tool?: { pytest?: { ini_options?: { addopts?: unknown } } } };
      const v = doc.tool?.pytest?.ini_options?.addopts;
      if (Array.isArray(v)) return v.map(String).flatMap(split);
      return typeof v === 'string' ? split(v) : null;
    } catch {
      return null; // a pyproject pytest cannot read either: the run will say so
    }
  }
  if (hasSection(contents['tox.ini'], 'pytest')) return ((v) => (v === null ? null : split(v)))(iniValue(contents['tox.ini']!, 'pytest', 'addopts'));
  if (hasSection(contents['setup.cfg'], 'tool:pytest')) return ((v) => (v === null ? null : split(v)))(iniValue(contents['setup.cfg']!, 'tool:pytest', 'addopts'));
  return null;
}

/** Flags dropped with their separate value. */
const DROP_WITH_VALUE = new Set(['--cov-report', '--cov-config', '--cov-fail-under', '--cov-context', '--maxfail', '--junitxml', '--junit-xml', '--junit-prefix', '--html', '--flake8-max-line-length']);
/** Flags dropped alone (or in their `--x=value` form). */
const DROP = /^(--cov(-[a-z-]+)?|--no-cov(-on-fail)?|--flake8|--mypy(-[a-z-]+)?|--black|--isort|--pylint|--pycodestyle|--pydocstyle|--codestyle|--pep8|--ruff(-format)?|--eradicate|--mccabe|-x|--exitfirst|--maxfail|--sw|--stepwise(-skip)?|--lf|--last-failed|--ff|--failed-first|--nf|--new-first|-q+|--quiet|--junitxml|--junit-xml|--html|--self-contained-html)$/;

/** `addopts` words without the gates listed in the file comment. */
export function cleanAddopts(words: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const flag = w.split('=')[0]!;
    if (DROP_WITH_VALUE.has(w)) { i++; continue; }
    // `--cov pkg` (a separate optional value): the next word is the value when it is no flag and no path pytest would collect.
    if (w === '--cov' && i + 1 < words.length && !words[i + 1]!.startsWith('-') && !/\.py$|(^|\/)tests?\b/.test(words[i + 1]!)) { i++; continue; }
    if (DROP.test(flag)) continue;
    out.push(w);
  }
  return out;
}

/**
 * The pytest invocation that honours the repository's configuration minus its gates: `-o addopts=<cleaned>`
 * when cleaning changed anything (pytest's `-o` overrides an ini value; `-o addopts=` is the documented
 * way to clear it), else none.
 */
export function pytestInvocations(contents: Record<string, string>): Invocation[] {
  const addopts = pytestAddopts(contents);
  if (addopts === null) return [];
  const clean = cleanAddopts(addopts);
  if (clean.length === addopts.length) return [];
  return [{ label: '', env: {}, nodeOptions: [], args: ['-o', `addopts=${clean.map(shq).join(' ')}`], paths: [] }];
}

/** Words after `unittest` in a `python -m unittest …` command of tox.ini, with `-v` and tox substitutions dropped. */
export function unittestArgs(tox: string | undefined): string[] {
  const cmds = tox ? iniValue(tox, 'testenv', 'commands') ?? '' : '';
  const m = /-m\s+unittest\b(.*?)(?:$|&&|;|\|)/.exec(cmds);
  if (!m) return [];
  return shellParse(m[1]!).filter((t): t is string => typeof t === 'string' && !/^\{.*\}$/.test(t) && t !== '-v' && t !== '--verbose' && !t.startsWith('--buffer'));
}

/**
 * pytest unless the tests are only where pytest's default discovery (`test_*.py`, `*_test.py`) does not
 * look and nothing in the repository configures or requires pytest — then unittest, with the arguments
 * of tox's `python -m unittest …` when it has them.
 */
export function pythonRunner(files: string[], contents: Record<string, string>, testFiles: string[]): { runner: 'pytest' | 'unittest'; invocations: Invocation[] } {
  const mentionsPytest = Object.entries(contents).some(([p, t]) => !/\.lock$/.test(p) && /pytest/i.test(t)) || files.some((f) => /(^|\/)(conftest\.py|pytest\.ini)$/.test(f));
  const collectable = testFiles.some((f) => /(^|\/)(test_[^/]*|[^/]*_test)\.py$/.test(f));
  if (mentionsPytest || collectable) return { runner: 'pytest', invocations: pytestInvocations(contents) };
  const args = unittestArgs(contents['tox.ini']);
  return { runner: 'unittest', invocations: args.length ? [{ label: '', env: {}, nodeOptions: [], args, paths: [] }] : [] };
}
