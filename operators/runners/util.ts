/**
 * Small helpers shared by the report parsers: shell quoting, ANSI stripping, path relativising and the
 * JUnit XML reader (fast-xml-parser).
 */
import { XMLParser } from 'fast-xml-parser';
import { dedupeResults, type TestResult } from './types.js';

/** Quote a string for bash as one word ('…' with embedded quotes escaped). */
export function shq(s: string): string {
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Quote a list of files for bash. */
export function shFiles(files: string[]): string {
  return files.map(shq).join(' ');
}

// ECMA-48 CSI and OSC sequences; runners colour output even when told not to (vitest's tinyrainbow on a tty).
const ANSI_RE = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*\u0007/g;

/** Remove terminal colour/control sequences and carriage returns. */
export function stripAnsi(s: string): string {
  return s.replace(ANSI_RE, '').replace(/\r/g, '');
}

/**
 * Make a report's file path repository-relative: strip `workdir/` when the path is absolute under it,
 * and a leading `./`. Paths outside the workdir are returned unchanged.
 */
export function relPath(p: string, workdir?: string): string {
  let out = p;
  if (workdir && out.startsWith('/')) {
    const w = workdir.endsWith('/') ? workdir : workdir + '/';
    if (out.startsWith(w)) out = out.slice(w.length);
  }
  return out.replace(/^\.\//, '');
}

/** Environment prefix that keeps runners from colouring, watching or prompting. */
export const QUIET_ENV = 'CI=true NO_COLOR=1 FORCE_COLOR=0';

/** A parsed XML element as fast-xml-parser returns it with attributes under `@_` and text under `#text`. */
export type XmlNode = Record<string, unknown>;

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  textNodeName: '#text',
  // every element may repeat; reading them always as arrays keeps the walkers simple
  isArray: (name) => ['testsuites', 'testsuite', 'testcase', 'failure', 'error', 'skipped'].includes(name),
  parseAttributeValue: false,
  processEntities: true,
  htmlEntities: true,
});

/**
 * Parse JUnit XML (the de-facto schema of Ant's JUnit task as emitted by pytest, vitest, node:test and
 * jest-junit: testsuites > testsuite* > testcase with failure | error | skipped children).
 * @returns the document root, or null when the text is not well-formed XML.
 */
export function parseXml(text: string): XmlNode | null {
  try {
    const trimmed = text.trim();
    if (!trimmed.startsWith('<')) return null;
    const doc = xml.parse(trimmed, true) as XmlNode;
    return doc;
  } catch {
    // Malformed (a run killed while writing): the caller falls back to the text log.
    return null;
  }
}

/** Child elements named `name` (always an array). */
export function kids(node: XmlNode | undefined, name: string): XmlNode[] {
  const v = node?.[name];
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' && x !== null ? (x as XmlNode) : {}));
  return [typeof v === 'object' ? (v as XmlNode) : {}];
}

/** Attribute value as a string ('' when absent). */
export function attr(node: XmlNode, name: string): string {
  const v = node[`@_${name}`];
  return v === undefined || v === null ? '' : String(v);
}

/** Seconds attribute (JUnit `time`) in ms, or undefined. */
export function timeMs(node: XmlNode): number | undefined {
  const t = Number(attr(node, 'time'));
  return Number.isFinite(t) && attr(node, 'time') !== '' ? Math.round(t * 1000) : undefined;
}

/** Marker before each file's part of a per-file report (see {@link perFileCommand}). */
export const FILE_MARK_REPORT = '<!-- swe-stream file: ';
/** Marker before each file's part of the log. */
export const FILE_MARK_LOG = '# swe-stream file: ';
/** Line after each file's part of the report: the exit code of that file's run. */
export const FILE_EXIT_MARK = '<!-- swe-stream exit: ';

/**
 * A bash loop that runs `run` once per file — for runners where one file that fails to load aborts the
 * whole run, or whose report does not name files — appending each file's report (written by `run` to
 * the part path `$__part`) to `reportPath` after `<!-- swe-stream file: <path> -->` and before
 * `<!-- swe-stream exit: <code> -->`, and printing `# swe-stream file: <path>` before its log. `files`
 * is a bash word list (quoted paths, or an unquoted glob / command substitution). Exits with the last
 * non-zero exit code of any file's run.
 * @param run the command for one file, given the file as `"$__f"` and the part path as `"$__part"`
 */
export function perFileCommand(opts: { files: string; reportPath: string; run: string; prelude?: string[] }): string {
  const rep = shq(opts.reportPath);
  const part = shq(opts.reportPath + '.part');
  return [
    ...(opts.prelude ?? []),
    `__rc=0`,
    `__part=${part}`,
    `: > ${rep}`,
    `for __f in ${opts.files}; do echo "${FILE_MARK_LOG}$__f"; echo "${FILE_MARK_REPORT}$__f -->" >> ${rep}; rm -f "$__part"; ` +
      `${opts.run}; __frc=$?; [ $__frc -eq 0 ] || __rc=$__frc; ` +
      `cat "$__part" >> ${rep} 2>/dev/null; echo "${FILE_EXIT_MARK}$__frc -->" >> ${rep}; rm -f "$__part"; done`,
    `exit $__rc`,
  ].join('; ');
}

/** One file's part of a per-file report: its text and the exit code of its run (null when not recorded). */
export interface FilePart {
  file: string;
  text: string;
  exitCode: number | null;
}

/** Split a report written by {@link perFileCommand} into its files' parts, in order. */
export function fileParts(report: string): FilePart[] {
  const out: FilePart[] = [];
  for (const chunk of report.split(FILE_MARK_REPORT).slice(1)) {
    const end = chunk.indexOf(' -->');
    if (end < 0) continue;
    const file = chunk.slice(0, end);
    let text = chunk.slice(end + 4);
    let exitCode: number | null = null;
    const x = text.lastIndexOf(FILE_EXIT_MARK);
    if (x >= 0) {
      exitCode = Number.parseInt(text.slice(x + FILE_EXIT_MARK.length), 10);
      if (!Number.isFinite(exitCode)) exitCode = null;
      text = text.slice(0, x);
    }
    out.push({ file, text: text.replace(/^\n/, ''), exitCode });
  }
  return out;
}

/** Split a log written by {@link perFileCommand} into `file → its log` (text before the first marker dropped). */
export function fileLogs(log: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const chunk of stripAnsi(log).split(FILE_MARK_LOG).slice(1)) {
    const nl = chunk.indexOf('\n');
    const file = (nl < 0 ? chunk : chunk.slice(0, nl)).trim();
    out.set(file, (out.get(file) ?? '') + (nl < 0 ? '' : chunk.slice(nl + 1)));
  }
  return out;
}

/**
 * The results of a run: from the machine-readable report when there is one and it parsed to at least one test,
 * else from the text log (a run killed before its reporter wrote, a reporter that did not load); deduplicated.
 */
export function reportElseLog(report: string | null, log: string, parsers: { report: (r: string) => TestResult[] | null; log: (l: string) => TestResult[] }): TestResult[] {
  if (report !== null) {
    const r = parsers.report(report);
    if (r && r.length) return dedupeResults(r);
  }
  return dedupeResults(parsers.log(log));
}

/** The JSON values of a JSON-lines report, in order; blank lines and a line cut by a kill are passed over. */
export function* jsonLines<T>(text: string): Generator<T> {
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    try {
      yield JSON.parse(raw) as T;
    } catch {
      continue; // a line cut by a kill
    }
  }
}
