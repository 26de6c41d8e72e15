import { describe, expect, it } from 'vitest';
import { assertReadOnly, bareWords, ReadOnlyViolation, withReadonlySetting } from '../../../connectors/analytics/readonly.js';
import { safeJson, safeText, table } from '../../../connectors/analytics/render.js';

describe('read-only gate of swe-stream query', () => {
  it.each([
    'SELECT count() FROM tasks',
    'select * from stage_outcomes final where kind = \'rejected\';',
    'WITH 1 AS x SELECT x',
    'SHOW TABLES',
    'DESCRIBE TABLE tasks',
    'desc tasks',
    'EXPLAIN SELECT 1',
    "SELECT 'DROP TABLE tasks; INSERT' AS s",
    'SELECT `update`, "delete" FROM t -- DROP TABLE x',
    'SELECT 1 /* ALTER */',
  ])('allows %s', (sql) => {
    expect(() => assertReadOnly(sql)).not.toThrow();
  });

  it.each([
    ['INSERT INTO tasks VALUES (1)', /must start with/],
    ['  drop table tasks', /must start with/],
    ['SELECT 1; DROP TABLE tasks', /one statement/],
    ['SELECT * FROM tasks INTO OUTFILE \'/tmp/x\'', /OUTFILE/],
    ['WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x', /INSERT/],
    ['SELECT 1 SETTINGS readonly = 0; SET readonly = 0', /one statement/],
    ['EXPLAIN ALTER TABLE tasks DELETE WHERE 1', /ALTER/],
    ['', /empty/],
    ['-- only a comment', /empty/],
  ])('refuses %s', (sql, msg) => {
    let err: unknown;
    try { assertReadOnly(sql); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ReadOnlyViolation);
    expect((err as ReadOnlyViolation).retriable).toBe(false);
    expect((err as Error).message).toMatch(msg);
  });

  it('skips literals, quoted identifiers and comments', () => {
    expect(bareWords("SELECT 'it''s', 'a\\'b' AS \"x y\" # c\nFROM t").words).toEqual(['SELECT', 'AS', 'FROM', 'T']);
  });
});

describe('read-only for real: nothing outside the tables', () => {
  it.each([
    ["SELECT * FROM file('/etc/passwd')", /file\(\) reads outside/],
    ["SELECT file('/etc/hostname')", /file\(\)/],
    ["select * from URL('http://127.0.0.1:1/x', 'CSV')", /url\(\)/],
    ["SELECT * FROM s3 /* c */ ('https://b/k')", /s3\(\)/],
    ["SELECT * FROM tasks WHERE repo IN (SELECT * FROM remoteSecure('h', db.t))", /remotesecure\(\)/],
    ["SELECT * FROM executable('x.sh', 'TSV', 'a String')", /executable\(\)/],
    ['SELECT 1 SETTINGS readonly = 0', /SETTINGS/],
  ])('refuses %s', (sql, msg) => {
    expect(() => assertReadOnly(sql)).toThrow(msg);
  });

  it('refuses a table function the engine lists that the static list does not know; allows the computing ones', () => {
    expect(() => assertReadOnly('SELECT * FROM newLake(1)', new Set(['newlake', 'numbers']))).toThrow(/newlake\(\)/);
    expect(assertReadOnly('SELECT * FROM numbers(3)', new Set(['newlake', 'numbers']))).toBe('SELECT * FROM numbers(3)');
    expect(assertReadOnly("SELECT 'file(x)', `url` FROM tasks")).toBe("SELECT 'file(x)', `url` FROM tasks");
  });

  it('withReadonlySetting adds readonly = 1, before a FORMAT clause', () => {
    expect(withReadonlySetting('SELECT 1')).toBe('SELECT 1 SETTINGS readonly = 1');
    expect(withReadonlySetting('SELECT 1 FORMAT JSON')).toBe('SELECT 1 SETTINGS readonly = 1 FORMAT JSON');
  });
});

describe('printing values from event data', () => {
  it('escapes terminal control sequences and bidi overrides, in tables and JSON', () => {
    expect(safeText('a\x1b[31mred\x07\u009b2J\u202eevil\nnext\ttab')).toBe('a\\x1b[31mred\\x07\\x9b2J\\u202eevil\\nnext\\ttab');
    expect(table(['t\x1b]0;x'], [['\x1b[2J']])).not.toMatch(/\x1b/);
    const j = safeJson({ s: '\x1b[31m\u009b\u202e' });
    expect(j).not.toMatch(/[\x1b\u009b\u202e]/);
    expect(JSON.parse(j)).toEqual({ s: '\x1b[31m\u009b\u202e' });
  });
});
