/**
 * verify on a generated JavaScript repository in real Docker containers, once per JS runner (jest,
 * vitest, mocha, node:test on the base image's Node 18, whose node:test reports TAP): the runners are
 * installed from the npm registry into one shared environment image; each PR fixes a bug and adds a
 * failing test, and mocha's PR also adds a spec file that cannot load before the fix. The task image and
 * release check in it are covered by the pytest file; here the release check is graded on the runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerSandboxFactory } from '../../../operators/sandbox/docker.js';
import { testCreateStage } from '../../../operators/test-create.js';
import { verifyStage } from '../../../operators/verify.js';
import type { TestsReady } from '../../../schemas/types.gen.js';
import { GenRepo, buildEnvImage, candidateOf, environmentOf, envelope, npmRunners, testsReadyFrom } from './helpers.js';

const WORKDIR = '/testbed';
const sandboxes = new DockerSandboxFactory({ labels: { 'swe-stream.test': 'verify-js' } });

const SRC_BUGGY = `exports.upper = (s) => s.toUpperCase();\nexports.lower = (s) => s.toUpperCase();\n`;
const SRC_FIXED = `exports.upper = (s) => s.toUpperCase();\nexports.lower = (s) => s.toLowerCase();\n`;

const JEST = (extra = '') => `const { upper, lower } = require('../src/strings');\ndescribe('strings', () => {\n  test('upper', () => { expect(upper('a')).toBe('A'); });${extra}\n});\n`;
const VITEST = (extra = '') => `import { describe, test, expect } from 'vitest';\nimport { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\nconst { upper, lower } = require('../src/strings.js');\ndescribe('strings', () => {\n  test('upper', () => { expect(upper('a')).toBe('A'); });${extra}\n});\n`;
const MOCHA = (extra = '') => `const assert = require('assert');\nconst { upper, lower } = require('../src/strings');\ndescribe('strings', function () {\n  it('upper', function () { assert.strictEqual(upper('a'), 'A'); });${extra}\n});\n`;
const NODE = (extra = '') => `const { describe, it } = require('node:test');\nconst assert = require('node:assert');\nconst { upper, lower } = require('../src/strings');\ndescribe('strings', () => {\n  it('upper', () => { assert.strictEqual(upper('a'), 'A'); });${extra}\n});\n`;

const repo = new GenRepo();
const parent = repo.commit({
  'package.json': '{ "name": "jsrepo", "private": true }\n',
  '.gitignore': 'node_modules\n',
  'src/strings.js': SRC_BUGGY,
  'jest/strings.test.js': JEST(),
  'vt/strings.test.mjs': VITEST(),
  'mocha/strings.spec.js': MOCHA(),
  'nt/strings.test.js': NODE(),
}, 'initial');
const prs = {
  jest: repo.pr('jest', parent, { 'src/strings.js': SRC_FIXED, 'jest/strings.test.js': JEST(`\n  test('lower', () => { expect(lower('A')).toBe('a'); });`) }),
  vitest: repo.pr('vitest', parent, { 'src/strings.js': SRC_FIXED, 'vt/strings.test.mjs': VITEST(`\n  test('lower', () => { expect(lower('A')).toBe('a'); });`) }),
  mocha: repo.pr('mocha', parent, {
    'src/strings.js': SRC_FIXED,
    'src/trim.js': 'exports.trim = (s) => s.trim();\n',
    'mocha/strings.spec.js': MOCHA(`\n  it('lower', function () { assert.strictEqual(lower('A'), 'a'); });`),
    'mocha/trim.spec.js': `const assert = require('assert');\nconst { trim } = require('../src/trim');\ndescribe('trim', function () {\n  it('trims', function () { assert.strictEqual(trim(' a '), 'a'); });\n});\n`,
  }),
  'node-test': repo.pr('node-test', parent, { 'src/strings.js': SRC_FIXED, 'nt/strings.test.js': NODE(`\n  it('lower', () => { assert.strictEqual(lower('A'), 'a'); });`) }),
};

let envImage: { ref: string; id: string };
const verify = verifyStage({ sandboxes, runTimeoutMs: 180_000, taskImage: false });
const tc = testCreateStage();

beforeAll(async () => {
  const b = await sandboxes.baseImage('javascript');
  envImage = await buildEnvImage({
    sandboxes, base: b, repo, checkout: parent, workdir: WORKDIR, name: 'strings-js', setup: 'node --version',
    postClone: npmRunners('jest@29.7.0', 'vitest@3.2.4', 'mocha@10.8.2'),
  });
}, 900_000);

afterAll(() => repo.remove());

async function testsReady(runner: keyof typeof prs, number: number): Promise<TestsReady> {
  const candidate = candidateOf(repo, { name: 'strings', number, parent, pr: prs[runner], language: 'javascript' });
  return testsReadyFrom(tc, candidate, environmentOf(envImage, { language: 'javascript', runner, workdir: WORKDIR }));
}

describe('verify (JS runners)', () => {
  const cases: [keyof typeof prs, string[], string[]][] = [
    ['jest', ['jest/strings.test.js > strings > lower'], ['jest/strings.test.js > strings > upper']],
    ['vitest', ['vt/strings.test.mjs > strings > lower'], ['vt/strings.test.mjs > strings > upper']],
    ['mocha', ['mocha/strings.spec.js > strings > lower', 'mocha/trim.spec.js > trim > trims'], ['mocha/strings.spec.js > strings > upper']],
    ['node-test', ['nt/strings.test.js > strings > lower'], ['nt/strings.test.js > strings > upper']],
  ];
  cases.forEach(([runner, f2p, p2p], i) => {
    it(`verifies a PR with ${runner}`, async () => {
      const out = await verify.handle(envelope(await testsReady(runner, 10 + i)));
      if (out.kind !== 'accepted') throw new Error(JSON.stringify(out));
      const v = out.value.verification;
      expect(v.FAIL_TO_PASS).toEqual(f2p);
      expect(v.PASS_TO_PASS).toEqual(p2p);
      expect([v.runs_before, v.runs_after, v.gold_resolved, v.empty_resolved]).toEqual([2, 3, true, false]);
      expect(v.flaky).toEqual([]);
    }, 900_000);
  });
});
