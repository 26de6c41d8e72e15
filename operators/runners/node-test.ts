/**
 * node:test (`node --test`): node's JUnit reporter (Node ≥ 20.11 / 21.3) names no file, and node runs
 * each file in its own process, so the command runs the files one at a time, each with
 * `--test-reporter=junit` (TAP on older Nodes such as Debian bookworm's 18, whose JUnit reporter does
 * not exist) to a part file appended to the report after a `<!-- swe-stream file: <path> -->` marker,
 * and `--test-reporter=spec` to stdout after a `# swe-stream file: <path>` line for the log fallback.
 * Test ids: `path > describe > test`.
 */
import type { ParseContext, Runner, TestCommandOptions, TestResult, TestStatus } from './types.js';
import { dedupeResults } from './types.js';
import { jsId } from './jest.js';
import { attr, kids, parseXml, relPath, shFiles, shq, stripAnsi, timeMs, type XmlNode } from './util.js';

const MARK_XML = '<!-- swe-stream file: ';
const MARK_LOG = '# swe-stream file: ';

// node's own default file patterns (node docs, "Running tests from the command line"), node_modules excluded.
const FIND_ALL = `find . -name node_modules -prune -o -type f \\( -path '*/test/*' -o -name '*.test.*' -o -name 'test-*' -o -name '*-test.*' -o -name '*_test.*' -o -name 'test.*' \\) -regex '.*\\.[cm]?js' -print | sed 's|^\\./||' | sort`;

/** The per-file loop described above; exits non-zero when any file's run did. */
function testCommand(opts: TestCommandOptions): string {
  const rep = shq(opts.reportPath);
  const part = shq(opts.reportPath + '.part');
  const files = opts.files === 'all' ? (opts.patterns?.length ? shFiles(opts.patterns) : `$(${FIND_ALL})`) : shFiles(opts.files);
  const args = opts.args?.length ? shFiles(opts.args) + ' ' : '';
  return [
    `__fmt=$(node -p "var v=process.versions.node.split('.').map(Number);(v[0]>20||(v[0]===20&&v[1]>=11))?'junit':'tap'")`,
    `__rc=0`,
    `: > ${rep}`,
    `for __f in ${files}; do echo "${MARK_LOG}$__f"; echo "${MARK_XML}$__f -->" >> ${rep}; rm -f ${part}; ` +
      `NO_COLOR=1 FORCE_COLOR=0 node --test ${args}--test-reporter=$__fmt --test-reporter-destination=${part} --test-reporter=spec --test-reporter-destination=stdout "$__f" || __rc=$?; ` +
      `cat ${part} >> ${rep} 2>/dev/null; rm -f ${part}; done`,
    `exit $__rc`,
  ].join('; ');
}

/** Is `name` (absolute or relative, as node names a file that failed to load) the file `file`? */
function isFileName(name: string, file: string, ctx?: ParseContext): boolean {
  return name === file || relPath(name, ctx?.workdir) === file || name.endsWith('/' + file);
}

function fromJunitChunk(doc: XmlNode, file: string, ctx?: ParseContext): TestResult[] {
  const out: TestResult[] = [];
  const walk = (node: XmlNode, chain: string[]) => {
    for (const tc of kids(node, 'testcase')) {
      const name = attr(tc, 'name');
      const failed = kids(tc, 'failure').length > 0 || kids(tc, 'error').length > 0;
      if (chain.length === 0 && isFileName(name, file, ctx)) {
        out.push({ name: file, status: failed ? 'ERROR' : 'PASSED' });
        continue;
      }
      const status: TestStatus = failed ? 'FAILED' : kids(tc, 'skipped').length ? 'SKIPPED' : 'PASSED';
      out.push({ name: jsId(file, [...chain, name]), status, durationMs: timeMs(tc) });
    }
    for (const s of kids(node, 'testsuite')) walk(s, [...chain, attr(s, 'name')]);
  };
  for (const r of kids(doc, 'testsuites')) walk(r, []);
  for (const s of kids(doc, 'testsuite')) walk(s, [attr(s, 'name')]);
  return out;
}

/**
 * node's TAP (TAP version 13 with subtests indented four spaces per level, `# Subtest: name` before and
 * `ok|not ok N - name [# SKIP|# TODO]` after each). A result line is a test when no deeper result came
 * since its `# Subtest`, otherwise a describe block. Node 18 wraps each file in a subtest named by its
 * path: that level is dropped, and its failure without children means the file did not load (ERROR).
 */
function fromTapChunk(text: string, file: string, ctx?: ParseContext): TestResult[] {
  const out: TestResult[] = [];
  const names: string[] = [];
  const hadKids: boolean[] = [];
  for (const raw of text.split('\n')) {
    const indent = raw.length - raw.trimStart().length;
    const level = Math.floor(indent / 4);
    const line = raw.trim();
    const sub = /^# Subtest: (.*)$/.exec(line);
    if (sub) { names[level] = sub[1]!; hadKids[level] = false; names.length = level + 1; hadKids.length = level + 1; continue; }
    const res = /^(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/.exec(line);
    if (!res) continue;
    for (let l = 0; l < level; l++) hadKids[l] = true;
    const name = res[2]!.replace(/\\#/g, '#');
    if (hadKids[level]) continue; // a describe block's own line
    const chain = names.slice(0, level);
    if (chain.length && isFileName(chain[0]!, file, ctx)) chain.shift();
    else if (level === 0 && isFileName(name, file, ctx)) {
      out.push({ name: file, status: res[1] === 'ok' ? 'PASSED' : 'ERROR' });
      continue;
    }
    const status: TestStatus = res[3] ? 'SKIPPED' : res[1] === 'ok' ? 'PASSED' : 'FAILED';
    out.push({ name: jsId(file, [...chain, name]), status });
  }
  return out;
}

/**
 * node's spec reporter: `▶ suite` opens a describe block, `✔ name (…ms)` / `✖ name` / `﹣ name … # SKIP`
 * close a test (or, with the block's own name at its indent, the block); two spaces per level. The
 * `✖ failing tests:` recap and the `ℹ` totals end a file's section.
 */
function fromSpec(log: string): TestResult[] {
  const out: TestResult[] = [];
  let file: string | null = null;
  let stack: string[] = [];
  let done = false;
  for (const raw of stripAnsi(log).split('\n')) {
    if (raw.startsWith(MARK_LOG)) { file = raw.slice(MARK_LOG.length).trim(); stack = []; done = false; continue; }
    if (!file || done) continue;
    if (/^✖ failing tests:/.test(raw) || /^ℹ tests \d+/.test(raw)) { done = true; continue; }
    const indent = raw.length - raw.trimStart().length;
    const level = Math.floor(indent / 2);
    const line = raw.trim();
    // Node 18 closes a describe block with `▶ name (…ms)`; newer Nodes with `✔|✖ name (…ms)`.
    const open = /^▶ (.*?)( \([\d.]+m?s\))?$/.exec(line);
    if (open) { stack = stack.slice(0, level); if (!open[2]) stack[level] = open[1]!; continue; }
    const res = /^(✔|✖|﹣) (.*?)(?: \([\d.]+m?s\))?( # (SKIP|TODO).*)?$/.exec(line);
    if (!res) continue;
    const name = res[2]!;
    if (stack.length > level && stack[level] === name) { stack = stack.slice(0, level); continue; }
    if (level === 0 && name.endsWith('/' + file)) { out.push({ name: file, status: res[1] === '✖' ? 'ERROR' : 'PASSED' }); continue; }
    const status: TestStatus = res[1] === '﹣' || res[4] ? 'SKIPPED' : res[1] === '✖' ? 'FAILED' : 'PASSED';
    out.push({ name: jsId(file, [...stack.slice(0, level), name]), status });
  }
  return out;
}

function fromReport(report: string, ctx?: ParseContext): TestResult[] {
  const out: TestResult[] = [];
  const chunks = report.split(MARK_XML).slice(1);
  for (const chunk of chunks) {
    const end = chunk.indexOf(' -->');
    if (end < 0) continue;
    const file = chunk.slice(0, end);
    const body = chunk.slice(end + 4).trim();
    if (!body) continue;
    if (body.startsWith('TAP version') || /^(not )?ok \d/m.test(body) && !body.startsWith('<')) out.push(...fromTapChunk(body, file, ctx));
    else {
      const doc = parseXml(body);
      if (doc) out.push(...fromJunitChunk(doc, file, ctx));
    }
  }
  return out;
}

function parse(report: string | null, log: string, ctx?: ParseContext): TestResult[] {
  const fromRep = report !== null ? fromReport(report, ctx) : [];
  const fromLog = fromSpec(log);
  // Per file, the report wins; files the report lacks (the run was killed midway) come from the log.
  const repFiles = new Set(fromRep.map((r) => r.name.split(' > ')[0]));
  return dedupeResults([...fromRep, ...fromLog.filter((r) => !repFiles.has(r.name.split(' > ')[0]))]);
}

/** node --test's default patterns: files under test/ and *.test.js, test-*.js, *-test.js, *_test.js, test.js. */
function isTestFile(path: string): boolean {
  if (/(^|\/)node_modules\//.test(path) || !/\.[cm]?[jt]s$/.test(path)) return false;
  const base = path.split('/').pop() ?? '';
  return /(^|\/)test\//.test(path) || /\.test\.[cm]?[jt]s$/.test(base) || /^test-/.test(base) || /[-_]test\.[cm]?[jt]s$/.test(base) || /^test\.[cm]?[jt]s$/.test(base);
}

/** The node:test runner. */
export const nodeTest: Runner = { name: 'node-test', reportFormat: 'junit', testCommand, parse, isTestFile };
