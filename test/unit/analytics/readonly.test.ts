import { describe, expect, it } from 'vitest';
import { assertReadOnly, bareWords, ReadOnlyViolation } from '../../../connectors/analytics/readonly.js';

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
