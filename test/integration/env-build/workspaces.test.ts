/**
 * A monorepo end to end through env-build → test-create → verify in real Docker containers, once with npm
 * workspaces (root package.json `workspaces: ["packages/*"]`, the root's test script delegating with `npm test
 * --workspaces`, which the rules cannot read as a runner) and once with pnpm (pnpm-workspace.yaml, `pnpm -r
 * test`, the `workspace:*` protocol, pnpm installed from the npm registry), each with two packages, `@acme/strings`
 * (node:test) and `@acme/app` (depends on `@acme/strings` through the workspace link). A PR that fixes a
 * bug in packages/strings and adds a test is verified from that package's own `scripts.test`, run in its
 * directory after one workspace install at the root; test ids stay repository-relative. No registry
 * package is needed but pnpm itself (node:test on the base image's Node).
 */
import { afterAll, describe, expect, it } from 'vitest';
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { DockerSandboxFactory } from '../../../operators/sandbox/docker.js';
import { envBuildStage } from '../../../operators/env-build.js';
import { testCreateStage } from '../../../operators/test-create.js';
import { verifyStage } from '../../../operators/verify.js';
import type { EnvironmentReady, PrCandidate, TestsReady } from '../../../schemas/types.gen.js';
import { dockerEngineAvailable } from '../../helpers/docker.js';
import { GenRepo, candidateOf } from '../verify/helpers.js';

const engine = await dockerEngineAvailable();
const docker = new Docker();

const STRINGS_BUGGY = `exports.upper = (s) => s.toUpperCase();\nexports.lower = (s) => s.toUpperCase();\n`;
const STRINGS_FIXED = `exports.upper = (s) => s.toUpperCase();\nexports.lower = (s) => s.toLowerCase();\n`;
const STRINGS_TEST = (extra = '') => `const { describe, it } = require('node:test');\nconst assert = require('node:assert');\nconst { upper, lower } = require('../src/strings');\ndescribe('strings', () => {\n  it('upper', () => { assert.strictEqual(upper('a'), 'A'); });${extra}\n});\n`;

/** A two-package monorepo for one package manager: the root declares the workspace, app depends on strings through it. */
function monorepo(o: { root: Record<string, string>; appDependency: string }): { repo: GenRepo; parent: string; pr: string } {
  const repo = new GenRepo();
  const parent = repo.commit({
    ...o.root,
    '.gitignore': 'node_modules\n',
    'packages/strings/package.json': JSON.stringify({ name: '@acme/strings', version: '1.0.0', main: 'src/strings.js', scripts: { test: 'node --test test/' } }, null, 2) + '\n',
    'packages/strings/src/strings.js': STRINGS_BUGGY,
    'packages/strings/test/strings.test.js': STRINGS_TEST(),
    'packages/app/package.json': JSON.stringify({ name: '@acme/app', version: '1.0.0', dependencies: { '@acme/strings': o.appDependency }, scripts: { test: 'node --test test/' } }, null, 2) + '\n',
    'packages/app/src/app.js': `const { upper } = require('@acme/strings');\nexports.shout = (s) => upper(s) + '!';\n`,
    'packages/app/test/app.test.js': `const { it } = require('node:test');\nconst assert = require('node:assert');\nconst { shout } = require('../src/app');\nit('shouts', () => { assert.strictEqual(shout('a'), 'A!'); });\nit('shouts twice', () => { assert.strictEqual(shout('b'), 'B!'); });\nit('shouts thrice', () => { assert.strictEqual(shout('c'), 'C!'); });\n`,
  }, 'initial');
  const pr = repo.pr('fix-lower', parent, {
    'packages/strings/src/strings.js': STRINGS_FIXED,
    'packages/strings/test/strings.test.js': STRINGS_TEST(`\n  it('lower', () => { assert.strictEqual(lower('A'), 'a'); });`),
  });
  return { repo, parent, pr };
}

const cases = [
  {
    manager: 'npm',
    // `npm test --workspaces` delegates: the rules cannot read it as a runner, so each package's own script is used.
    ...monorepo({ root: { 'package.json': JSON.stringify({ name: 'acme', private: true, workspaces: ['packages/*'], scripts: { test: 'npm test --workspaces' } }, null, 2) + '\n' }, appDependency: '1.0.0' }),
    notes: /monorepo \(package\.json workspaces: packages\/\*\)/,
  },
  {
    manager: 'pnpm',
    // pnpm's own declaration file, the `workspace:` protocol, pnpm installed from the npm registry at env-build, no lockfile.
    ...monorepo({
      root: {
        'package.json': JSON.stringify({ name: 'acme', private: true, packageManager: 'pnpm@9.15.9', scripts: { test: 'pnpm -r test' } }, null, 2) + '\n',
        'pnpm-workspace.yaml': "packages:\n  - 'packages/*'\n",
      },
      appDependency: 'workspace:*',
    }),
    notes: /pnpm-workspace\.yaml/,
  },
];

const prefix = `swe-stream-test/env-ws-${randomBytes(3).toString('hex')}`;
const runLabel = `env-build-ws-${randomBytes(4).toString('hex')}`;
const sandboxes = new DockerSandboxFactory({ labels: { 'swe-stream.test': runLabel } });
const envelope = <T>(value: T) => ({ key: 'k', value, origin: { topic: 't', partition: 0, offset: '0' }, attempt: 1, signal: new AbortController().signal });

afterAll(async () => {
  const images = await docker.listImages({ filters: { reference: [`${prefix}-*`] } });
  for (const i of images) await docker.getImage(i.Id).remove({ force: true }).catch(() => undefined);
  for (const c of cases) c.repo.remove();
});

describe.skipIf(!engine)('monorepo: a PR in one workspace package (real engine)', () => {
  it.each(cases)("$manager: installs at the root, runs the touched package's own tests from its directory, and verifies FAIL_TO_PASS from them", async ({ repo, parent, pr, notes }) => {
    const candidate = candidateOf(repo, { name: 'monorepo', number: 1, parent, pr, language: 'javascript' });
    const env = envBuildStage({ sandboxes, repoPath: async () => repo.dir, imagePrefix: prefix, installTimeoutMs: 300_000, suiteTimeoutMs: 120_000 });
    const built = await env.handle(envelope<PrCandidate>({ candidate, provenance: [] }));
    if (built.kind !== 'accepted') throw new Error(`env-build: ${JSON.stringify(built).slice(0, 3000)}`);
    const ready: EnvironmentReady = built.value;
    const e = ready.environment;
    expect(e.package_dirs).toEqual(['packages/strings']);
    expect(e.runner).toBe('node-test');
    expect(e.test_invocations?.map((i) => i.dir)).toEqual(['packages/strings']);
    // Only the touched package's suite ran (1 test at the parent), not packages/app's 3.
    expect(e.tests_parsed).toBe(1);
    expect(e.install_notes?.join('\n')).toMatch(notes);

    const tc = await testCreateStage().handle(envelope(ready));
    if (tc.kind !== 'accepted') throw new Error(`test-create: ${JSON.stringify(tc)}`);
    const tests: TestsReady = tc.value;
    expect(tests.tests.test_files).toEqual(['packages/strings/test/strings.test.js']);
    expect(tests.tests.test_command).toContain("cd packages/strings");

    const verified = await verifyStage({ sandboxes, runTimeoutMs: 120_000, taskImage: false }).handle(envelope(tests));
    if (verified.kind !== 'accepted') throw new Error(`verify: ${JSON.stringify(verified).slice(0, 3000)}`);
    const v = verified.value.verification;
    expect(v.FAIL_TO_PASS).toEqual(['packages/strings/test/strings.test.js > strings > lower']);
    expect(v.PASS_TO_PASS).toEqual(['packages/strings/test/strings.test.js > strings > upper']);
  }, 900_000);
});
