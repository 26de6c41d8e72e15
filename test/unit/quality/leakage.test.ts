// Fixtures are small diff excerpts of real merged PRs:
//   more-itertools/more-itertools #1200 (sliced: raise for negative n), #1193 (interleave_evenly: empty input),
//   #938 (derangements: new public functions), iamkun/dayjs #3180 (timezone: no RangeError on invalid dates).
// Statements are written like the issues users file for them.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkLeakage, changedIdentifiers, pathForms, publicApiNames, addedStringLiterals } from '../../../operators/quality/leakage.js';
import { parseDiff } from '../../../operators/pr/patch.js';

const fx = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const sliced = { patch: fx('mit-1200-sliced.patch.diff'), testPatch: fx('mit-1200-sliced.test.diff'), failToPass: ['tests/test_more.py::SlicedTests::test_negative'] };
const interleave = { patch: fx('mit-1193-interleave.patch.diff'), testPatch: fx('mit-1193-interleave.test.diff'), failToPass: ['tests/test_more.py::InterleaveEvenlyTests::test_no_iterables'] };
const derange = { patch: fx('mit-938-derangements.patch.diff'), testPatch: fx('mit-938-derangements.test.diff'), failToPass: ['tests/test_more.py::DerangementsTests::test_range_manual', 'tests/test_more.py::DerangementsTests::test_range'] };
const tz = {
  patch: fx('dayjs-3180-tz.patch.diff'),
  testPatch: fx('dayjs-3180-tz.test.diff'),
  failToPass: ['test/plugin/timezone.test.js > does not throw for invalid Day.js values (regression #111.22)', 'test/plugin/timezone.test.js > does not throw for invalid string in d.tz()'],
};
const kinds = (r: ReturnType<typeof checkLeakage>) => r.evidence.map((e) => e.kind).sort();

describe('leakage gate: clean statements are not flagged', () => {
  it('python bug report naming the public function', () => {
    const r = checkLeakage({
      ...sliced,
      statement: `### sliced() silently returns wrong results for a negative size

Calling \`more_itertools.sliced\` with a negative \`n\` does not complain:

\`\`\`python
>>> from more_itertools import sliced
>>> list(sliced('ABCDEFG', -1))
[]
\`\`\`

A negative slice size makes no sense, and the same happens with \`strict=True\`. I would expect a
\`ValueError\` to be raised, like \`chunked\` does for invalid sizes. The value of n should be at least 0.`,
    });
    expect(r.evidence).toEqual([]);
    expect(r.score).toBe(0);
    expect(r.flagged).toBe(false);
  });

  it('python bug report with common words that are also names in the patch', () => {
    const r = checkLeakage({
      ...interleave,
      statement: `interleave_evenly fails when given no iterables at all.

\`list(interleave_evenly([]))\` raises an exception instead of returning an empty list; passing
\`lengths=[]\` as well does the same. With no input there is nothing to interleave, so the result should
simply be empty. The dims of the input are zero and we should sort nothing and return early, descending into nothing.`,
    });
    expect(r.evidence).toEqual([]);
  });

  it('javascript bug report', () => {
    const r = checkLeakage({
      ...tz,
      statement: `Since 1.11.22, calling \`.tz('Europe/Skopje')\` on an invalid date throws
\`RangeError: Invalid time value\` (it comes from Intl.DateTimeFormat). The same happens with
\`dayjs.tz('invalid', 'Europe/Skopje')\`. Expected: no exception, and the result is an invalid Day.js
instance (\`isValid()\` returns false), as with every other method on invalid dates. The timezone plugin
should keep working after this; the index of the problem is the local time.`,
    });
    expect(r.evidence).toEqual([]);
  });

  it('feature request that must name the new public API', () => {
    const r = checkLeakage({
      ...derange,
      statement: `Please add \`derangements(iterable, r=None)\`: like \`itertools.permutations\`, but yield only the
permutations where no element stays at its own index (for integer elements k, position k never holds k).
\`sorted(derangements([0, 1, 2]))\` should give \`[(1, 2, 0), (2, 0, 1)]\`, and with \`r\` only r-length
derangements are yielded.`,
    });
    expect(r.evidence).toEqual([]);
    expect(publicApiNames(derange.patch, derange.testPatch)).toContain('derangements');
  });
});

describe('leakage gate: common words that are also changed names', () => {
  const patch = `diff --git a/shop/cart.py b/shop/cart.py
--- a/shop/cart.py
+++ b/shop/cart.py
@@ -10,4 +10,6 @@ class Cart:
     def total(self):
-        return sum(i.price for i in self.items)
+        limit = self.discount_limit
+        discount = min(self.discount, limit)
+        return sum(i.price for i in self.items) - discount
`;
  it('prose use is clean, code use is flagged', () => {
    const prose = checkLeakage({ patch, statement: 'The cart total ignores the discount limit: a discount larger than the limit is applied in full.' });
    expect(prose.evidence).toEqual([]);
    const code = checkLeakage({ patch, statement: 'In `Cart.total`, clamp `discount` with `min()` before subtracting it.' });
    expect(code.evidence.map((e) => e.match).sort()).toEqual(['Cart', 'discount', 'total']);
  });
  it('words between two code spans, or inside a pasted log, are prose', () => {
    // GH Archive issue text shapes: two spans on one line, and a fenced log
    const st = "Using `Cart` with a limit (see `docs/cart`) gives a discount twice.\n\n```\nWARN total limit exceeded, discount applied\n```";
    expect(checkLeakage({ patch, statement: st }).evidence).toEqual([{ kind: 'identifier', match: 'Cart' }]);
  });
});

describe('leakage gate: leaky statements are flagged', () => {
  it('a statement naming the changed file', () => {
    const r = checkLeakage({ ...sliced, statement: 'In more_itertools/more.py, sliced() should reject a negative n with ValueError.' });
    expect(r.evidence).toContainEqual({ kind: 'file-path', match: 'more_itertools/more.py' });
    expect(r.strong).toBe(false);
    expect(r.score).toBeCloseTo(0.5);
    // basename and module forms
    expect(kinds(checkLeakage({ ...sliced, statement: 'The bug is in more.py near sliced.' }))).toEqual(['file-path']);
    // dotted module paths: public ones are API (`attr.validators`), private ones a location (`attr._make`)
    expect(checkLeakage({ ...sliced, statement: 'See more_itertools.more for the sliced function.' }).flagged).toBe(false);
    const priv = "diff --git a/src/attr/_make.py b/src/attr/_make.py\n--- a/src/attr/_make.py\n+++ b/src/attr/_make.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n";
    expect(kinds(checkLeakage({ patch: priv, statement: 'The bug is in attr._make somewhere.' }))).toEqual(['file-path']);
    expect(kinds(checkLeakage({ ...tz, statement: 'Fix the guard in src/plugin/timezone/index.js please.' }))).toEqual(['file-path']);
    expect(kinds(checkLeakage({ ...tz, statement: 'Look at timezone/index.js.' }))).toEqual(['file-path']);
  });

  it('a statement quoting the fix', () => {
    const r = checkLeakage({
      ...sliced,
      statement: 'sliced() must validate n. Add at the top:\n\n    if n < 0:\n        raise ValueError(\'n must be at least 0\')\n',
    });
    expect(kinds(r)).toEqual(['patch-line', 'string-literal']);
    expect(r.evidence).toContainEqual({ kind: 'patch-line', match: "raise ValueError('n must be at least 0')" });
    expect(r.strong).toBe(true);
    const reformatted = checkLeakage({ ...sliced, statement: 'Just do raise ValueError( "n must be at least 0" ) — no wait: raise ValueError(\'n must be at least 0\' ) when n<0.' });
    expect(reformatted.evidence).toContainEqual({ kind: 'patch-line', match: "raise ValueError('n must be at least 0')" });
    const j = checkLeakage({ ...tz, statement: 'In proto.tz add `if (!this.isValid()) return this` and in d.tz check `Number.isNaN(localTs)`.' });
    expect(j.evidence).toContainEqual({ kind: 'patch-line', match: 'if (!this.isValid()) return this' });
    expect(j.strong).toBe(true);
  });

  it('a statement naming the test', () => {
    const r = checkLeakage({ ...sliced, statement: 'Make test_negative in SlicedTests pass: sliced should raise for negative sizes.' });
    expect(r.evidence.filter((e) => e.kind === 'test-name').map((e) => e.match).sort()).toEqual(['SlicedTests', 'test_negative']);
    expect(r.strong).toBe(true);
    const reformatted = checkLeakage({ ...sliced, statement: 'Just do raise ValueError( "n must be at least 0" ) — no wait: raise ValueError(\'n must be at least 0\' ) when n<0.' });
    expect(reformatted.evidence).toContainEqual({ kind: 'patch-line', match: "raise ValueError('n must be at least 0')" });
    const j = checkLeakage({ ...tz, statement: 'The case "does not throw for invalid Day.js values (regression #111.22)" fails.' });
    expect(kinds(j)).toEqual(['test-name']);
    // short titles count only when quoted (dayjs test title "Format invalid date")
    const short = { ...tz, failToPass: ['test/display.test.js > Format invalid date'] };
    expect(checkLeakage({ ...short, statement: 'Format invalid date values as "Invalid Date".' }).flagged).toBe(false);
    expect(kinds(checkLeakage({ ...short, statement: 'The case "Format invalid date" fails.' }))).toEqual(['test-name']);
    const k = checkLeakage({ ...tz, statement: 'Run npx jest test/plugin/timezone.test.js to see it fail.' });
    expect(kinds(k)).toEqual(['file-path']);
  });

  it('a statement giving line numbers of the change or the test command', () => {
    // the sliced hunk is @@ -1534,6 +1534,9 @@
    const r = checkLeakage({ ...sliced, testCommands: ['pytest -rA tests/test_more.py'], statement: 'See more.py line 1537. Reproduce with `pytest -rA tests/test_more.py`.' });
    expect(r.evidence).toEqual([
      { kind: 'file-path', match: 'more.py' },
      { kind: 'file-path', match: 'tests/test_more.py' },
      { kind: 'line-number', match: 'line 1537' },
      { kind: 'test-command', match: 'pytest -rA tests/test_more.py' },
    ]);
    expect(checkLeakage({ ...sliced, statement: 'It fails on line 1535 of my script, 3 lines later.' }).evidence).toEqual([]);
    // a traceback in a human issue names file and line: evidence, but not strong
    const tb = checkLeakage({ ...sliced, statement: 'File "/usr/lib/python3/site-packages/more_itertools/more.py", line 1537, in sliced' });
    expect(tb.evidence.map((e) => e.kind)).toEqual(['file-path', 'line-number']);
    expect(tb.strong).toBe(false);
  });

  it('a statement using an internal name the patch adds but the tests do not call', () => {
    const r = checkLeakage({ ...derange, statement: 'Add derangements and also `distinct_derangements` for inputs with duplicates.' });
    expect(r.evidence).toEqual([{ kind: 'identifier', match: 'distinct_derangements' }]);
    expect(checkLeakage({ ...derange, allow: ['distinct_derangements'], statement: 'Add derangements and `distinct_derangements`.' }).flagged).toBe(false);
  });
});

describe('leakage gate helpers', () => {
  it('finds identifiers the patch adds or changes (Python and JS)', () => {
    expect(changedIdentifiers(parseDiff(sliced.patch))).toEqual(['sliced']);
    expect(changedIdentifiers(parseDiff(interleave.patch))).toEqual(['interleave_evenly']);
    // `tz` is changed too but shorter than 3 characters; `localTs` is only read, not changed
    expect(changedIdentifiers(parseDiff(tz.patch))).toEqual(['ins']);
    expect(changedIdentifiers(parseDiff(derange.patch))).toEqual(expect.arrayContaining(['derangements', 'distinct_derangements']));
  });
  it('finds JS/TS definitions of every common shape', () => {
    const lines = [
      'export function parseThing(a) {',
      'export default class RetryQueue extends Base {',
      '  private async flushPending(x: number): Promise<void> {',
      'const normaliseUrl = (u) => u.trim()',
      '  onRetry: (err) => log(err),',
      '  beforeSend: async function (req) {',
      'export interface HookOptions {',
      'module.exports.makeClient = function () {',
    ];
    const patch = `diff --git a/src/a.ts b/src/a.ts\n--- a/src/a.ts\n+++ b/src/a.ts\n@@ -1 +1,${lines.length} @@\n${lines.map((l) => '+' + l).join('\n')}\n`;
    expect(changedIdentifiers(parseDiff(patch)).sort()).toEqual(['HookOptions', 'RetryQueue', 'beforeSend', 'flushPending', 'makeClient', 'normaliseUrl', 'onRetry', 'parseThing']);
  });
  it('path forms skip generic basenames', () => {
    expect(pathForms('src/plugin/timezone/index.js')).toEqual(['src/plugin/timezone/index.js', 'plugin/timezone/index.js', 'timezone/index.js']);
    expect(pathForms('more_itertools/more.py')).toEqual(['more_itertools/more.py', 'more.py']);
    expect(pathForms('src/attr/_make.py')).toEqual(['src/attr/_make.py', 'attr/_make.py', '_make.py', 'attr._make']);
    expect(pathForms('pkg/__init__.py')).toEqual(['pkg/__init__.py']);
  });
  it('collects added string literals, not ones the patch only moves', () => {
    expect(addedStringLiterals(parseDiff(sliced.patch))).toEqual(['n must be at least 0']);
    const moved = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = f('some long literal')\n+x = g('some long literal')\n";
    expect(addedStringLiterals(parseDiff(moved))).toEqual([]);
  });
  it('a literal the tests assert on is specified behaviour, not a leak', () => {
    const patch = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,3 @@ def check(x):\n+    raise ValueError('value out of range')\n     return x\n";
    const testPatch = "diff --git a/t.py b/t.py\n--- a/t.py\n+++ b/t.py\n@@ -1 +1,2 @@\n+    with raises(ValueError, match='value out of range'): check(5)\n";
    expect(checkLeakage({ statement: "check(5) should raise a ValueError with the message 'value out of range'.", patch, testPatch }).evidence).toEqual([]);
  });
});
