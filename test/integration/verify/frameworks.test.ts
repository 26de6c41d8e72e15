/**
 * test-create + verify in real Docker containers for the runners added for breadth (issue 11): jasmine,
 * AVA and tape (one shared JavaScript environment image, the frameworks installed from the npm
 * registry), a suite run under two time zones (the repository's `TZ=… && TZ=…` script as invocations:
 * the fix's test fails only outside UTC, so it is FAIL_TO_PASS in one variant only, the variant in its
 * id), node-tap ≥ 18 run through its CLI (TypeScript files, a plugin installed by the install-time
 * warm-up), karma specs in Debian's headless Chromium, and a Python unittest suite whose test file pytest would not collect (stdlib only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerSandboxFactory } from '../../../operators/sandbox/docker.js';
import { testCreateStage } from '../../../operators/test-create.js';
import { verifyStage } from '../../../operators/verify.js';
import type { Environment, TaskVerified, TestsReady } from '../../../schemas/types.gen.js';
import { TAP_WARMUP } from '../../../operators/runners/tap.js';
import { GenRepo, buildEnvImage, candidateOf, environmentOf, envelope, npmRunners, testsReadyFrom } from './helpers.js';

const WORKDIR = '/testbed';
const CONTAINER_TEST_MS = 900_000;
const sandboxes = new DockerSandboxFactory({ labels: { 'swe-stream.test': 'verify-frameworks' } });

const SRC_BUGGY = `exports.upper = (s) => s.toUpperCase();\nexports.lower = (s) => s.toUpperCase();\n` +
  `exports.hour = (ms) => new Date(ms).getHours();\n`;
const SRC_FIXED = `exports.upper = (s) => s.toUpperCase();\nexports.lower = (s) => s.toLowerCase();\n` +
  `exports.hour = (ms) => new Date(ms).getUTCHours();\n`;

const JASMINE = (extra = '') => `const { upper, lower } = require('../src/strings');\ndescribe('strings', () => {\n  it('upper', () => { expect(upper('a')).toBe('A'); });${extra}\n});\n`;
const AVA = (extra = '') => `const test = require('ava');\nconst { upper, lower } = require('../src/strings');\ntest('upper', (t) => { t.is(upper('a'), 'A'); });${extra}\n`;
const TAPE = (extra = '') => `const test = require('tape');\nconst { upper, lower, hour } = require('../src/strings');\ntest('upper', (t) => { t.equal(upper('a'), 'A'); t.end(); });${extra}\n`;

const repo = new GenRepo();
const parent = repo.commit({
  'package.json': '{ "name": "fwrepo", "private": true }\n',
  '.gitignore': 'node_modules\n',
  'src/strings.js': SRC_BUGGY,
  'spec/strings.spec.js': JASMINE(),
  'avatest/strings.test.js': AVA(),
  'tapetest/strings.test.js': TAPE(),
}, 'initial');
const prs = {
  jasmine: repo.pr('jasmine', parent, { 'src/strings.js': SRC_FIXED, 'spec/strings.spec.js': JASMINE(`\n  it('lower', () => { expect(lower('A')).toBe('a'); });`) }),
  ava: repo.pr('ava', parent, { 'src/strings.js': SRC_FIXED, 'avatest/strings.test.js': AVA(`\ntest('lower', (t) => { t.is(lower('A'), 'a'); });`) }),
  tap: repo.pr('tape', parent, { 'src/strings.js': SRC_FIXED, 'tapetest/strings.test.js': TAPE(`\ntest('lower', (t) => { t.equal(lower('A'), 'a'); t.end(); });\ntest('hour of the epoch', (t) => { t.equal(hour(0), 0); t.end(); });`) }),
};

/** The repository's `TZ=UTC tape … && TZ=Asia/Tokyo tape …` as env-build records it. */
const TZ_VARIANTS: Environment['test_invocations'] = [
  { label: 'TZ=UTC', env: { TZ: 'UTC' }, node_options: [], args: [], paths: [], dir: null },
  { label: 'TZ=Asia/Tokyo', env: { TZ: 'Asia/Tokyo' }, node_options: [], args: [], paths: [], dir: null },
];

let envImage: { ref: string; id: string };
const verify = verifyStage({ sandboxes, runTimeoutMs: 180_000, taskImage: false });
const tc = testCreateStage();

beforeAll(async () => {
  const b = await sandboxes.baseImage('javascript');
  envImage = await buildEnvImage({
    sandboxes, base: b, repo, checkout: parent, workdir: WORKDIR, name: 'frameworks-js', setup: 'node --version',
    postClone: npmRunners('jasmine@5.13.0', 'ava@6.4.1', 'tape@5.9.0'),
  });
}, 900_000);

afterAll(() => repo.remove());

async function testsReady(runner: keyof typeof prs, number: number, invocations: Environment['test_invocations'] = null): Promise<TestsReady> {
  const candidate = candidateOf(repo, { name: 'fw', number, parent, pr: prs[runner], language: 'javascript' });
  const env = environmentOf(envImage, { language: 'javascript', runner, workdir: WORKDIR, preCommands: ['export PATH="$PWD/node_modules/.bin:$PATH"'], invocations });
  return testsReadyFrom(tc, candidate, env);
}

/** What verify made of `ready`; throws with the outcome when it did not accept. */
async function verified(ready: TestsReady): Promise<TaskVerified['verification']> {
  const out = await verify.handle(envelope(ready));
  if (out.kind !== 'accepted') throw new Error(JSON.stringify(out));
  return out.value.verification;
}

describe('verify (jasmine, AVA, tape)', () => {
  const cases: [keyof typeof prs, string[], string[]][] = [
    ['jasmine', ['spec/strings.spec.js > strings > lower'], ['spec/strings.spec.js > strings > upper']],
    ['ava', ['avatest/strings.test.js > lower'], ['avatest/strings.test.js > upper']],
  ];
  cases.forEach(([runner, f2p, p2p], i) => {
    it(`verifies a PR with ${runner}`, async () => {
      const v = await verified(await testsReady(runner, 20 + i));
      expect(v.FAIL_TO_PASS).toEqual(f2p);
      expect(v.PASS_TO_PASS).toEqual(p2p);
      expect([v.gold_resolved, v.empty_resolved]).toEqual([true, false]);
    }, CONTAINER_TEST_MS);
  });

  it('runs every time-zone variant: a test failing only outside UTC is FAIL_TO_PASS in that variant', async () => {
    const ready = await testsReady('tap', 30, TZ_VARIANTS);
    expect(ready.tests.test_command).toContain("export TZ=Asia/Tokyo");
    const v = await verified(ready);
    expect(v.FAIL_TO_PASS).toEqual([
      'tapetest/strings.test.js > hour of the epoch [TZ=Asia/Tokyo]',
      'tapetest/strings.test.js > lower [TZ=Asia/Tokyo]',
      'tapetest/strings.test.js > lower [TZ=UTC]',
    ]);
    expect(v.PASS_TO_PASS).toEqual([
      'tapetest/strings.test.js > hour of the epoch [TZ=UTC]',
      'tapetest/strings.test.js > upper [TZ=Asia/Tokyo]',
      'tapetest/strings.test.js > upper [TZ=UTC]',
    ]);
  }, CONTAINER_TEST_MS);
});

describe('verify (node-tap ≥ 18: its CLI, TypeScript test files, a plugin from .taprc)', () => {
  // As isaacs/node-lru-cache has it: TypeScript tests importing `./x.js` for `x.ts`, `@tapjs/clock` named
  // in .taprc (installed by the CLI on first use, so only with the network on), a node-arg.
  const calcTest = (extra = '') => `import t from 'tap'\nimport { add, sub } from '../src/calc.js'\nimport { twice } from './fixtures/twice.js'\n` +
    `t.test('adds', t => { t.equal(add(1, twice(1)), 3); t.end() })\n` +
    `t.test('clock from the plugin', t => { let fired = false; t.clock.enter(); setTimeout(() => { fired = true }, 1000); t.clock.advance(1000); t.clock.exit(); t.ok(fired); t.end() })\n` +
    `t.test('gc from node-arg', t => { t.equal(typeof globalThis.gc, 'function'); t.end() })\n${extra}`;
  const tr = new GenRepo();
  const trParent = tr.commit({
    'package.json': '{ "name": "tap18", "private": true, "type": "module", "scripts": { "test": "tap" }, "devDependencies": { "tap": "21.8.0" } }\n',
    '.gitignore': 'node_modules\n/.tap\n',
    '.taprc': 'node-arg:\n  - --expose-gc\nplugin:\n  - "@tapjs/clock"\n',
    'src/calc.ts': 'export const add = (a: number, b: number): number => a + b\nexport const sub = (a: number, b: number): number => a + b\n',
    'test/fixtures/twice.ts': 'export const twice = (n: number): number => n * 2\n',
    'test/calc.ts': calcTest(),
  }, 'initial');
  const trPr = tr.pr('sub', trParent, {
    'src/calc.ts': 'export const add = (a: number, b: number): number => a + b\nexport const sub = (a: number, b: number): number => a - b\n',
    'test/calc.ts': calcTest(`t.test('subtracts', t => { t.equal(sub(3, 1), 2); t.end() })\n`),
  });
  let trImage: { ref: string; id: string };

  beforeAll(async () => {
    const b = await sandboxes.baseImage('javascript');
    trImage = await buildEnvImage({
      sandboxes, base: b, repo: tr, checkout: trParent, workdir: WORKDIR, name: 'tap18-js', setup: 'npm install -g node@22 >/tmp/node.log 2>&1 || { tail -20 /tmp/node.log; exit 1; }',
      postClone: `${npmRunners()} && ${TAP_WARMUP} && test -d .tap/plugins/node_modules/@tapjs/clock`,
    });
  }, 900_000);
  afterAll(() => tr.remove());

  it('verifies a PR whose TypeScript test needs the CLI’s loader, plugin and node-arg, with the network off', async () => {
    const candidate = candidateOf(tr, { name: 'tap18', number: 50, parent: trParent, pr: trPr, language: 'typescript' });
    const env = environmentOf(trImage, { language: 'typescript', runner: 'tap', workdir: WORKDIR, preCommands: ['export PATH="$PWD/node_modules/.bin:$PATH"'] });
    const ready = await testsReadyFrom(tc, candidate, env);
    expect(ready.tests.test_files).toEqual(['test/calc.ts']);
    const v = await verified(ready);
    expect(v.FAIL_TO_PASS).toEqual(['test/calc.ts > subtracts']);
    expect([...v.PASS_TO_PASS].sort()).toEqual(['test/calc.ts > adds', 'test/calc.ts > clock from the plugin', 'test/calc.ts > gc from node-arg']);
    expect([v.gold_resolved, v.empty_resolved]).toEqual([true, false]);
  }, CONTAINER_TEST_MS);
});

describe('verify (karma: jasmine specs in headless Chromium)', () => {
  // Browser globals, as karma suites without a bundler have them; the repository's own config asks for
  // a headed Chrome, watch mode and a coverage reporter, which the harness's wrapper config replaces.
  const SPEC = (extra = '') => `describe('strings', function () {\n  it('upper', function () { expect(window.upper('a')).toBe('A'); });${extra}\n});\n`;
  const kr = new GenRepo();
  const krParent = kr.commit({
    'package.json': '{ "name": "karmarepo", "private": true, "scripts": { "test": "karma start karma.conf.js --single-run" } }\n',
    '.gitignore': 'node_modules\n',
    'karma.conf.js': "module.exports = function (config) {\n  config.set({ frameworks: ['jasmine'], files: ['src/*.js', 'test/*.spec.js'], browsers: ['Chrome'], reporters: ['progress', 'coverage'], singleRun: false });\n};\n",
    'src/strings.js': 'window.upper = function (s) { return s.toUpperCase(); };\nwindow.lower = function (s) { return s.toUpperCase(); };\n',
    'test/strings.spec.js': SPEC(),
  }, 'initial');
  const krPr = kr.pr('lower', krParent, {
    'src/strings.js': 'window.upper = function (s) { return s.toUpperCase(); };\nwindow.lower = function (s) { return s.toLowerCase(); };\n',
    'test/strings.spec.js': SPEC(`\n  it('lower', function () { expect(window.lower('A')).toBe('a'); });`),
  });
  let krImage: { ref: string; id: string };

  beforeAll(async () => {
    const b = await sandboxes.baseImage('javascript');
    krImage = await buildEnvImage({
      sandboxes, base: b, repo: kr, checkout: krParent, workdir: WORKDIR, name: 'karma-js',
      // Debian's chromium, as env-build installs it when a repository's dependencies name a browser launcher.
      setup: 'export DEBIAN_FRONTEND=noninteractive && apt-get update -q >/tmp/apt.log 2>&1 && apt-get install -y -q --no-install-recommends chromium >>/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; exit 1; }',
      postClone: npmRunners('karma@6.4.4', 'karma-jasmine@5.1.0', 'karma-chrome-launcher@3.2.0'),
    });
  }, 900_000);
  afterAll(() => kr.remove());

  it('verifies a PR whose specs run in the browser, with the network off', async () => {
    const candidate = candidateOf(kr, { name: 'karma', number: 60, parent: krParent, pr: krPr, language: 'javascript' });
    const invocations: Environment['test_invocations'] = [{ label: '', env: {}, node_options: [], args: ['karma.conf.js'], paths: [], dir: null }];
    const env = environmentOf(krImage, { language: 'javascript', runner: 'karma', workdir: WORKDIR, preCommands: ['export PATH="$PWD/node_modules/.bin:$PATH"'], invocations });
    const ready = await testsReadyFrom(tc, candidate, env);
    const v = await verified(ready);
    expect(v.FAIL_TO_PASS).toEqual(['strings > lower']);
    expect(v.PASS_TO_PASS).toEqual(['strings > upper']);
    expect([v.gold_resolved, v.empty_resolved]).toEqual([true, false]);
  }, CONTAINER_TEST_MS);
});

describe('verify (unittest)', () => {
  const py = new GenRepo();
  const pyParent = py.commit({
    'shapes/__init__.py': 'def area(w, h):\n    return w + h\n',
    'tests/__init__.py': '',
    'tests/shape_checks.py': 'import unittest\nfrom shapes import area\n\n\nclass Area(unittest.TestCase):\n    def test_zero(self):\n        self.assertEqual(area(0, 0), 0)\n',
  }, 'initial');
  const pyPr = py.pr('fix', pyParent, {
    'shapes/__init__.py': 'def area(w, h):\n    return w * h\n',
    'tests/shape_checks.py': 'import unittest\nfrom shapes import area\n\n\nclass Area(unittest.TestCase):\n    def test_zero(self):\n        self.assertEqual(area(0, 0), 0)\n\n    def test_rect(self):\n        self.assertEqual(area(2, 3), 6)\n',
  });
  let pyImage: { ref: string; id: string };

  beforeAll(async () => {
    const b = await sandboxes.baseImage('python');
    pyImage = await buildEnvImage({ sandboxes, base: b, repo: py, checkout: pyParent, workdir: WORKDIR, name: 'unittest-py', setup: 'python3 -m venv /opt/venv' });
  }, 900_000);
  afterAll(() => py.remove());

  it('verifies a PR whose tests only unittest collects (file not named test_*.py)', async () => {
    const candidate = candidateOf(py, { name: 'shapes', number: 40, parent: pyParent, pr: pyPr, language: 'python' });
    const ready = await testsReadyFrom(tc, candidate, environmentOf(pyImage, { language: 'python', runner: 'unittest', workdir: WORKDIR }));
    expect(ready.tests.test_files).toEqual(['tests/shape_checks.py']);
    const v = await verified(ready);
    expect(v.FAIL_TO_PASS).toEqual(['tests.shape_checks.Area.test_rect']);
    expect(v.PASS_TO_PASS).toEqual(['tests.shape_checks.Area.test_zero']);
  }, CONTAINER_TEST_MS);
});
