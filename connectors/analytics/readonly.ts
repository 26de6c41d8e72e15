/**
 * The read-only gate of `swe-stream query`: one statement that starts with SELECT, WITH, SHOW, DESCRIBE
 * (DESC) or EXPLAIN, and contains no write keyword outside string literals, quoted identifiers and
 * comments. On a server the query additionally runs with `readonly=1` (ClickHouse docs, "Permissions
 * for queries": reads only, no setting changes); chDB keeps settings on its session, so there the gate
 * alone guards.
 *
 * Deliberately strict: a keyword list over tokens refuses some harmless queries (a column literally
 * named `update` must be back-quoted), never a write.
 */

/** First keywords a query may start with. */
export const READ_KEYWORDS = ['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXPLAIN'] as const;

/** Keywords that write, change state or write files, refused anywhere in the query. */
const WRITE_KEYWORDS = new Set([
  'INSERT', 'CREATE', 'DROP', 'ALTER', 'TRUNCATE', 'RENAME', 'ATTACH', 'DETACH', 'OPTIMIZE', 'SYSTEM', 'KILL',
  'GRANT', 'REVOKE', 'SET', 'DELETE', 'UPDATE', 'USE', 'BACKUP', 'RESTORE', 'OUTFILE', 'EXCHANGE', 'UNDROP', 'MOVE', 'REPLACE',
]);

/** A refused query. Not retriable. */
export class ReadOnlyViolation extends Error {
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = 'ReadOnlyViolation';
  }
}

/**
 * Bare words of `sql` in order, upper-cased, plus whether a statement separator (`;` followed by more
 * text) occurs. String literals ('…' with \\ and '' escapes), quoted identifiers ("…", `…`) and
 * comments (-- …, # …, /* … *\/) are skipped.
 */
export function bareWords(sql: string): { words: string[]; multiStatement: boolean } {
  const words: string[] = [];
  let multi = false;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i++;
      while (i < sql.length && sql[i] !== c) i += sql[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    if ((c === '-' && sql[i + 1] === '-') || c === '#') {
      while (i < sql.length && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
      continue;
    }
    if (c === ';') {
      if (sql.slice(i + 1).trim() !== '') multi = true;
      i++;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < sql.length && /[A-Za-z0-9_]/.test(sql[j]!)) j++;
      words.push(sql.slice(i, j).toUpperCase());
      i = j;
      continue;
    }
    i++;
  }
  return { words, multiStatement: multi };
}

/**
 * Accept a read-only query or throw. Returns the query without a trailing `;`.
 * @throws ReadOnlyViolation naming the reason (empty, several statements, wrong first keyword, write keyword)
 */
export function assertReadOnly(sql: string): string {
  const { words, multiStatement } = bareWords(sql);
  if (words.length === 0) throw new ReadOnlyViolation('empty query');
  if (multiStatement) throw new ReadOnlyViolation('only one statement per query');
  if (!(READ_KEYWORDS as readonly string[]).includes(words[0]!)) {
    throw new ReadOnlyViolation(`read-only: queries must start with ${READ_KEYWORDS.join(', ')} (got ${words[0]})`);
  }
  const bad = words.find((w) => WRITE_KEYWORDS.has(w));
  if (bad) throw new ReadOnlyViolation(`read-only: ${bad} is not allowed in a query`);
  return sql.trim().replace(/;\s*$/, '');
}
