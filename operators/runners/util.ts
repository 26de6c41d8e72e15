/**
 * Small helpers shared by the report parsers: shell quoting, ANSI stripping, path relativising and the
 * JUnit XML reader (fast-xml-parser).
 */
import { XMLParser } from 'fast-xml-parser';

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
