/**
 * Unified-diff tools shared by the filter, test-create, verify and statement stages: parse `git diff`
 * output into files and hunks, re-assemble a subset of files into a patch `git apply` accepts, and hash
 * a normalised patch for duplicate detection. Format source: git-diff(1) "generating patches with -p"
 * and GNU diff's unified format.
 */
import { createHash } from 'node:crypto';

export interface DiffLine {
  type: '+' | '-' | ' ';
  text: string;
}

export interface DiffHunk {
  /** the `@@ -a,b +c,d @@ …` line */
  header: string;
  lines: DiffLine[];
}

export interface FileDiff {
  /** path after the change (for deletions, the old path) */
  path: string;
  /** path before the change; differs from path for renames */
  oldPath: string;
  status: 'added' | 'modified' | 'deleted' | 'renamed';
  binary: boolean;
  hunks: DiffHunk[];
  additions: number;
  deletions: number;
  /** this file's exact section of the diff text, `diff --git` line included, ending with a newline */
  raw: string;
}

function unquote(p: string): string {
  // git quotes paths with unusual characters C-style: "a/x\tb"
  if (p.startsWith('"') && p.endsWith('"')) return JSON.parse(p) as string;
  return p;
}

function stripPrefix(p: string): string {
  const u = unquote(p.trim());
  return u === '/dev/null' ? u : u.replace(/^[ab]\//, '');
}

/**
 * Parse a unified diff (as printed by `git diff`/`git show` with default prefixes) into files.
 * Lines outside any `diff --git` section (commit headers) are ignored.
 */
export function parseDiff(text: string): FileDiff[] {
  const files: FileDiff[] = [];
  const lines = text.split('\n');
  let cur: FileDiff | undefined;
  let hunk: DiffHunk | undefined;
  let rawLines: string[] = [];
  const finish = () => {
    if (cur) {
      cur.raw = rawLines.join('\n') + '\n';
      files.push(cur);
    }
    cur = undefined;
    hunk = undefined;
    rawLines = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('diff --git ')) {
      finish();
      const m = /^diff --git (".*?"|\S+) (".*?"|\S+)$/.exec(line);
      const a = m ? stripPrefix(m[1]!) : '';
      const b = m ? stripPrefix(m[2]!) : '';
      cur = { path: b, oldPath: a, status: 'modified', binary: false, hunks: [], additions: 0, deletions: 0, raw: '' };
      rawLines.push(line);
      continue;
    }
    if (!cur) continue;
    if (i === lines.length - 1 && line === '') break; // trailing newline of the whole text
    rawLines.push(line);
    if (hunk && (line.startsWith('+') || line.startsWith('-') || line.startsWith(' ') || line === '' || line.startsWith('\\'))) {
      if (line.startsWith('\\')) continue; // "\ No newline at end of file"
      const type = (line[0] ?? ' ') as DiffLine['type'];
      hunk.lines.push({ type, text: line.slice(1) });
      if (type === '+') cur.additions++;
      else if (type === '-') cur.deletions++;
      continue;
    }
    if (line.startsWith('@@')) {
      hunk = { header: line, lines: [] };
      cur.hunks.push(hunk);
    } else if (line.startsWith('new file mode')) cur.status = 'added';
    else if (line.startsWith('deleted file mode')) cur.status = 'deleted';
    else if (line.startsWith('rename from ')) { cur.oldPath = line.slice('rename from '.length); cur.status = 'renamed'; }
    else if (line.startsWith('rename to ')) { cur.path = line.slice('rename to '.length); cur.status = 'renamed'; }
    else if (line.startsWith('Binary files ') || line === 'GIT binary patch') cur.binary = true;
    else if (line.startsWith('--- ')) { const p = stripPrefix(line.slice(4)); if (p !== '/dev/null') cur.oldPath = p; }
    else if (line.startsWith('+++ ')) { const p = stripPrefix(line.slice(4)); if (p !== '/dev/null') cur.path = p; }
  }
  finish();
  for (const f of files) if (f.status === 'deleted') f.path = f.oldPath;
  return files;
}

/** Re-assemble files into one patch text (empty string for no files), suitable for `git apply`. */
export function joinDiff(files: FileDiff[]): string {
  return files.map((f) => f.raw).join('');
}

/** Lines the patch adds, across files (without the leading '+'). */
export function addedLines(files: FileDiff[]): string[] {
  return files.flatMap((f) => f.hunks.flatMap((h) => h.lines.filter((l) => l.type === '+').map((l) => l.text)));
}

/**
 * Content hash of a patch for duplicate detection (backports, cherry-picks, mirrors): sha256 over the
 * sorted files' paths and their added/removed lines with whitespace collapsed — hunk offsets, context
 * lines and index lines are left out because they differ between branches for the same change.
 */
export function patchHash(files: FileDiff[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    h.update(`F ${f.path}\n`);
    for (const hk of f.hunks)
      for (const l of hk.lines) if (l.type !== ' ') h.update(`${l.type}${l.text.replace(/\s+/g, ' ').trim()}\n`);
  }
  return h.digest('hex');
}
