/**
 * The read-only gate of `swe-stream query`: one statement that starts with SELECT, WITH, SHOW, DESCRIBE
 * (DESC) or EXPLAIN, and contains no write keyword, no SETTINGS clause and no call of a function that
 * reaches outside the tables (table functions such as file(), url(), s3(), remote(), and the scalar file())
 * outside string literals, quoted identifiers and comments. The query then also runs with `readonly=1`
 * (ClickHouse docs, "Permissions for queries": reads only, no setting changes, and table functions are
 * forbidden) — as a session setting on a server and on a one-shot chDB session, as a query-level SETTINGS
 * clause where the chDB session is shared with a running sink ({@link withReadonlySetting}). The two layers
 * cover each other: readonly=1 does not stop the scalar file(), and the name list cannot know table
 * functions a future engine adds.
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

/**
 * Table functions that only compute or read local tables (ClickHouse docs, "Table Functions"); every other
 * name in {@link OUTSIDE_FUNCTIONS}, and any other table function the engine lists, is refused.
 */
export const SAFE_TABLE_FUNCTIONS = new Set(['numbers', 'numbers_mt', 'zeros', 'zeros_mt', 'values', 'generate_series', 'generateseries', 'primes', 'null', 'merge', 'view', 'viewifpermitted', 'viewexplain', 'format', 'generaterandom', 'sqlstandardvalues']);

/**
 * Functions that read files, URLs, object stores, other servers or run programs: the table functions of
 * ClickHouse 26 (system.table_functions) that are not in {@link SAFE_TABLE_FUNCTIONS}, plus the scalar
 * file(). Lower-case; matched case-insensitively where a name is followed by `(`.
 */
export const OUTSIDE_FUNCTIONS = new Set([
  'file', 'filecluster', 'filesystem', 'url', 'urlcluster', 's3', 's3cluster', 'gcs', 'cosn', 'oss', 'azureblobstorage', 'azureblobstoragecluster',
  'remote', 'remotesecure', 'cluster', 'clusterallreplicas', 'mysql', 'postgresql', 'jdbc', 'odbc', 'mongodb', 'redis', 'sqlite', 'ytsaurus',
  'hdfs', 'hdfscluster', 'executable', 'input', 'dictionary', 'loop', 'fuzzjson', 'fuzzquery', 'eval', 'arrowstream', 'prometheusquery', 'prometheusqueryrange',
  'deltalake', 'deltalakeazure', 'deltalakeazurecluster', 'deltalakecluster', 'deltalakelocal', 'deltalakes3', 'deltalakes3cluster',
  'hudi', 'hudicluster', 'iceberg', 'icebergazure', 'icebergazurecluster', 'icebergcluster', 'iceberghdfs', 'iceberghdfscluster', 'iceberglocal',
  'iceberglocalcluster', 'icebergs3', 'icebergs3cluster', 'paimon', 'paimonazure', 'paimonazurecluster', 'paimoncluster', 'paimonhdfs',
  'paimonhdfscluster', 'paimonlocal', 'paimons3', 'paimons3cluster', 'mergetreeanalyzeindexes', 'mergetreeanalyzeindexesuuid', 'mergetreeindex',
  'mergetreeprojection', 'mergetreetextindex', 'timeseriesdata', 'timeseriesmetrics', 'timeseriessamples', 'timeseriesselector', 'timeseriestags',
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
export function bareWords(sql: string): { words: string[]; calls: string[]; multiStatement: boolean } {
  const words: string[] = [];
  /** bare words directly followed by `(` (whitespace and comments aside): function calls, lower-case */
  const calls: string[] = [];
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
      const word = sql.slice(i, j);
      words.push(word.toUpperCase());
      if (/^\s*(?:\/\*[\s\S]*?\*\/\s*)*\(/.test(sql.slice(j, j + 4096))) calls.push(word.toLowerCase());
      i = j;
      continue;
    }
    i++;
  }
  return { words, calls, multiStatement: multi };
}

/**
 * Accept a read-only query or throw. Returns the query without a trailing `;`.
 * @param engineTableFunctions lower-case names from the engine's system.table_functions, when known: any of
 *   them outside {@link SAFE_TABLE_FUNCTIONS} is refused too
 * @throws ReadOnlyViolation naming the reason (empty, several statements, wrong first keyword, write
 *   keyword, SETTINGS, a function that reaches outside the tables)
 */
export function assertReadOnly(sql: string, engineTableFunctions?: ReadonlySet<string>): string {
  const { words, calls, multiStatement } = bareWords(sql);
  if (words.length === 0) throw new ReadOnlyViolation('empty query');
  if (multiStatement) throw new ReadOnlyViolation('only one statement per query');
  if (!(READ_KEYWORDS as readonly string[]).includes(words[0]!)) {
    throw new ReadOnlyViolation(`read-only: queries must start with ${READ_KEYWORDS.join(', ')} (got ${words[0]})`);
  }
  const bad = words.find((w) => WRITE_KEYWORDS.has(w));
  if (bad) throw new ReadOnlyViolation(`read-only: ${bad} is not allowed in a query`);
  if (words.includes('SETTINGS')) throw new ReadOnlyViolation('read-only: SETTINGS is not allowed in a query');
  const outside = calls.find((c) => OUTSIDE_FUNCTIONS.has(c) || (engineTableFunctions?.has(c) && !SAFE_TABLE_FUNCTIONS.has(c)));
  if (outside) throw new ReadOnlyViolation(`read-only: ${outside}() reads outside the analytics tables`);
  return sql.trim().replace(/;\s*$/, '');
}

/**
 * `sql` (already accepted by {@link assertReadOnly}) with a query-level `SETTINGS readonly = 1`, for an engine
 * session that cannot itself be made read-only. A trailing FORMAT clause stays last, as ClickHouse's grammar wants.
 */
export function withReadonlySetting(sql: string): string {
  const m = /\bFORMAT\s+[A-Za-z]+\s*$/i.exec(sql);
  return m ? `${sql.slice(0, m.index).trimEnd()} SETTINGS readonly = 1 ${m[0]}` : `${sql} SETTINGS readonly = 1`;
}
