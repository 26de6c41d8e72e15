/**
 * The env-build stage on generated repositories against the real Docker engine: a Python suite with a
 * passing and a failing test (accepted: the suite ran, not everything passed), the environment reused for
 * a later commit with unchanged manifests (cache hit, new commit checked out in the image), a JavaScript
 * node:test suite (Node 22 from the npm registry), a broken install, a hanging install (timeout), a suite
 * that cannot run (every module fails to import) and a repository without tests.
 * Needs a Docker engine and the package registries (PyPI, npm).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { DockerSandboxFactory } from '../../../operators/sandbox/docker.js';
import { envBuildStage, ENV_LABELS } from '../../../operators/env-build.js';
import type { Candidate, EnvironmentReady, PrCandidate } from '../../../schemas/types.gen.js';
import type { Outcome } from '../../../streams/types.js';
import { dockerEngineAvailable } from '../../helpers/docker.js';

const run = promisify(execFile);
const docker = new Docker();
const engine = await dockerEngineAvailable();

/** A one-branch repository; each entry of `commits` is the files written before that commit. Returns the shas. */
async function makeRepo(dir: string, commits: Array<Record<string, string>>, date = '2024-01-01T00:00:00Z'): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const g = (...a: string[]) => run('git', a, { cwd: dir, env: { ...process.env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } });
  await g('init', '-q', '-b', 'main');
  const shas: string[] = [];
  for (const [i, files] of commits.entries()) {
    for (const [p, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await writeFile(join(dir, p), text);
    }
    await g('add', '-A');
    await g('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', `commit ${i}`);
    shas.push((await g('rev-parse', 'HEAD')).stdout.trim());
  }
  return shas;
}

function candidate(repo: string, dir: string, parent: string, language: string, n = 1): Candidate {
  return {
    pr_id: `${repo}#${n}`, repo, number: n, clone_url: dir, language, pr_commit: parent, parent_commit: parent, head_sha: null,
    title: 't', body: '', user_login: null, created_at: null, merged_at: null, linked_issues: [], files: [],
    size: { files: 0, hunks: 0, lines_added: 0, lines_removed: 0 }, diff: '', patch_hash: '', license: null, merge_style: null,
  };
}

const PYPROJECT = (deps: string[] = []) => `[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n[project]\nname = "calc"\nversion = "0.1.0"\ndependencies = ${JSON.stringify(deps)}\n\n[tool.setuptools]\npackages = ["calc"]\n`;

describe.skipIf(!engine)('env-build stage (real engine, generated repositories)', () => {
  const prefix = `swe-stream-test/env-${randomBytes(3).toString('hex')}`;
  // Unique per run: other processes may run this file against the same engine at the same time.
  const runLabel = `env-build-${randomBytes(4).toString('hex')}`;
  const factory = new DockerSandboxFactory({ labels: { 'swe-stream.test': runLabel } });
  let root: string;
  const stage = () => envBuildStage({ sandboxes: factory, repoPath: async (c) => c.clone_url, imagePrefix: prefix, installTimeoutMs: 240_000, suiteTimeoutMs: 120_000 });
  const handle = (s: ReturnType<typeof stage>, c: Candidate): Promise<Outcome<EnvironmentReady>> =>
    s.handle({ key: c.pr_id, value: { candidate: c, provenance: [] } satisfies PrCandidate, origin: { topic: 'pr.candidates', partition: 0, offset: '0' }, attempt: 1, signal: new AbortController().signal });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'swe-stream-envbuild-'));
    await factory.baseImage('python');
    await factory.baseImage('python', { python: '3.9' });
    await factory.baseImage('javascript');
  });
  afterAll(async () => {
    const images = await docker.listImages({ filters: { reference: [`${prefix}-*`] } });
    for (const i of images) await docker.getImage(i.Id).remove({ force: true }).catch(() => undefined);
    const left = await docker.listContainers({ all: true, filters: { label: [`swe-stream.test=${runLabel}`] } });
    expect(left).toHaveLength(0);
    await rm(root, { recursive: true, force: true });
  });

  it('Python: a suite with a failing test is accepted; a later commit with the same manifests hits the cache', async () => {
    const dir = join(root, 'py');
    const [a, b] = await makeRepo(dir, [
      {
        'pyproject.toml': PYPROJECT(),
        'calc/__init__.py': 'def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a + b  # bug\n',
        'tests/test_calc.py': 'from calc import add, sub\n\ndef test_add():\n    assert add(1, 2) == 3\n\ndef test_sub():\n    assert sub(3, 1) == 2\n',
      },
      { 'README.md': 'calc\n', 'pyproject.toml': PYPROJECT().replace('0.1.0', '0.2.0') },
    ]);
    const s = stage();
    const o1 = await handle(s, candidate('acme/calc', dir, a, 'python', 1));
    expect(o1.kind).toBe('accepted');
    if (o1.kind !== 'accepted') return;
    const e1 = o1.value.environment;
    expect(e1).toMatchObject({ language: 'python', runner: 'pytest', report_format: 'junit', workdir: '/testbed', method: 'rules', cache_hit: false, tests_parsed: 2, package_manager: 'pip', python_version: '3.11' });
    expect(e1.image_ref).toBe(`${prefix}-acme-calc:${e1.recipe_hash.slice(0, 12)}`);
    expect(e1.image_id).toMatch(/^sha256:/);
    expect(e1.build_log_tail).toContain('test_sub');
    expect(o1.value.provenance).toEqual([expect.objectContaining({ stage: 'env-build', method: 'rules', image_digest: e1.image_id })]);
    expect(await factory.imageLabels(e1.image_ref)).toMatchObject({ [ENV_LABELS.commit]: a, [ENV_LABELS.testsParsed]: '2' });

    const o2 = await handle(s, candidate('acme/calc', dir, b, 'python', 2));
    expect(o2.kind).toBe('accepted');
    if (o2.kind !== 'accepted') return;
    const e2 = o2.value.environment;
    expect(e2).toMatchObject({ cache_hit: true, recipe_hash: e1.recipe_hash, tests_parsed: 2 });
    expect(o2.meta?.cacheHit).toBe(true);
    expect(e2.image_ref).toBe(`${e1.image_ref}-${b.slice(0, 12)}`);
    expect(e2.build_ms).toBeLessThan(e1.build_ms / 5);
    // The reused image holds the new commit, with the environment's installs intact and no network.
    const sb = await factory.create({ image: e2.image_ref, network: false, workdir: '/testbed' });
    try {
      const r = await sb.exec(`git rev-parse HEAD && cat README.md && ${e2.test_command} >/dev/null; ls /tmp/swe-stream/`, { timeoutMs: 120_000 });
      expect(r.stdout).toContain(b);
      expect(r.stdout).toContain('calc');
      expect(r.stdout).toContain('report.xml');
    } finally {
      await sb.destroy();
    }
  }, 400_000);

  it('JavaScript: a node:test suite runs on Node 22 from the npm registry', async () => {
    const dir = join(root, 'js');
    const [a] = await makeRepo(dir, [
      {
        'package.json': JSON.stringify({ name: 'mini', version: '1.0.0', type: 'module', scripts: { test: 'node --test' }, engines: { node: '>=22' } }),
        'index.js': 'export const twice = (x) => x * 2;\n',
        'test/index.test.js': "import test from 'node:test';\nimport assert from 'node:assert';\nimport { twice } from '../index.js';\ntest('twice', () => assert.equal(twice(2), 4));\ntest('broken', () => assert.equal(twice(2), 5));\n",
      },
    ]);
    const o = await handle(stage(), candidate('acme/mini', dir, a, 'javascript'));
    expect(o.kind, o.kind === 'rejected' ? o.detail : '').toBe('accepted');
    if (o.kind !== 'accepted') return;
    expect(o.value.environment).toMatchObject({ runner: 'node-test', report_format: 'junit', node_version: '22', package_manager: 'npm', tests_parsed: 2 });
    expect(o.value.environment.install_commands.filter((c) => c.includes('node@22'))).toHaveLength(1);
    expect(o.value.environment.toolchain_source).toBe('engines.node >=22; LTS current on 2024-01-01');
  }, 300_000);

  it('an old commit: Python 3.9 from its classifiers, extras computed by setup.py, libraries of its time, a type-stub requirement that no longer resolves dropped', async () => {
    const dir = join(root, 'old');
    const setup = 'from setuptools import setup\nEXTRAS = {"tests": ["six"]}\nsetup(name="oldcalc", version="1.0", packages=["oldcalc"], extras_require=EXTRAS,\n      classifiers=["Programming Language :: Python :: 3.6", "Programming Language :: Python :: 3.7"])\n';
    const [a] = await makeRepo(
      dir,
      [
        {
          'setup.py': setup,
          'requirements-dev.txt': 'types-swe-stream-gone-4711==1.0\n',
          'oldcalc/__init__.py': 'def one():\n    return 1\n',
          'tests/test_one.py': 'import six\nfrom oldcalc import one\n\ndef test_one():\n    assert one() == 1 and six.PY3\n',
        },
      ],
      '2020-03-01T00:00:00Z',
    );
    const o = await handle(stage(), candidate('acme/old', dir, a, 'python'));
    expect(o.kind, o.kind === 'rejected' ? o.detail : '').toBe('accepted');
    if (o.kind !== 'accepted') return;
    const e = o.value.environment;
    expect(e).toMatchObject({ python_version: '3.9', toolchain_source: 'classifiers 3.6, 3.7', tests_parsed: 1 });
    expect(e.base_image).toMatch(/^swe-stream\/base-python3\.9:/);
    expect(e.install_notes).toEqual(expect.arrayContaining(['extras computed by setup.py: asked for test, tests, testing, dev', 'dropped types-swe-stream-gone-4711: no longer resolves (install step 4/6)']));
    expect(e.install_commands.every((c) => !c.startsWith('uv ') || c.includes('--exclude-newer 2020-10-06T00:00:00Z'))).toBe(true);
    expect(e.install_commands).toContain(`echo 'types-swe-stream-gone-4711 ; sys_platform == "never"' >> /opt/swe-stream/overrides.txt`);
    const sb = await factory.create({ image: e.image_ref, network: false, workdir: '/testbed' });
    try {
      // pytest as of the floor date (3.9's release), not today's.
      const r = await sb.exec('python --version && python -m pytest --version', { timeoutMs: 60_000 });
      expect(r.stdout + r.stderr).toMatch(/Python 3\.9\.\d+[\s\S]*pytest 6\./);
    } finally {
      await sb.destroy();
    }
  }, 600_000);

  it('rejects a broken install, a suite that cannot run, and a repository without tests', async () => {
    const s = stage();
    const broken = join(root, 'broken');
    const [b] = await makeRepo(broken, [{ 'pyproject.toml': PYPROJECT(['swe-stream-no-such-package-4711==0.0.1']), 'calc/__init__.py': '', 'tests/test_x.py': 'def test_x():\n    pass\n' }]);
    const ob = await handle(s, candidate('acme/broken', broken, b, 'python'));
    expect(ob).toMatchObject({ kind: 'rejected', reason: 'install-failed' });
    if (ob.kind === 'rejected') expect(ob.detail).toMatch(/swe-stream-no-such-package-4711/);

    const norun = join(root, 'norun');
    const [n] = await makeRepo(norun, [{ 'pyproject.toml': PYPROJECT(), 'calc/__init__.py': '', 'tests/test_x.py': 'import not_installed_anywhere\n\ndef test_x():\n    pass\n' }]);
    expect(await handle(s, candidate('acme/norun', norun, n, 'python'))).toMatchObject({ kind: 'rejected', reason: 'suite-does-not-run' });

    const none = join(root, 'none');
    const [t] = await makeRepo(none, [{ 'pyproject.toml': PYPROJECT(), 'calc/__init__.py': 'X = 1\n' }]);
    expect(await handle(s, candidate('acme/none', none, t, 'python'))).toMatchObject({ kind: 'rejected', reason: 'no-test-suite' });
  }, 400_000);

  it('a hanging install is cut at the install timeout', async () => {
    const dir = join(root, 'hang');
    // npm runs the root package's preinstall script on `npm install`: the first install command hangs.
    const [h] = await makeRepo(dir, [
      {
        'package.json': JSON.stringify({ name: 'hang', version: '1.0.0', scripts: { preinstall: 'sleep 3600', test: 'node --test' } }),
        'test/a.test.js': "require('node:test')('a', () => {});\n",
      },
    ]);
    const s = envBuildStage({ sandboxes: factory, repoPath: async (c) => c.clone_url, imagePrefix: prefix, installTimeoutMs: 15_000, suiteTimeoutMs: 60_000 });
    const t0 = Date.now();
    const o = await handle(s, candidate('acme/hang', dir, h, 'javascript'));
    expect(o).toMatchObject({ kind: 'rejected', reason: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(120_000);
  }, 300_000);
});

describe.skipIf(!engine)('env-build with the Environment Builder agent (real engine, scripted chat server)', () => {
  it('where the rules fail, the agent fixes the recipe; its submission is replayed from a clean base image and reused by the next commit', async () => {
    const { startChatServer } = await import('../../helpers/chat-server.js');
    const { agentLlm } = await import('../../../operators/llm/client.js');
    const { environmentBuilderAgent } = await import('../../../operators/env/agent.js');
    const prefix = `swe-stream-test/env-${randomBytes(3).toString('hex')}`;
    const root = await mkdtemp(join(tmpdir(), 'swe-stream-envagent-'));
    const runLabel = `env-build-agent-${randomBytes(4).toString('hex')}`;
    const factory = new DockerSandboxFactory({ labels: { 'swe-stream.test': runLabel } });
    const testCommand = 'cd /testbed && mkdir -p /tmp/swe-stream && python -m pytest -rA --junitxml=/tmp/swe-stream/report.xml -p no:cacheprovider';
    const install = ['python3 -m venv /opt/venv', 'python -m pip install -q -U pip setuptools wheel', 'python -m pip install -e .', 'python -m pip install pytest six'];
    const srv = await startChatServer([
      { toolCalls: [{ name: 'bash', arguments: { command: 'python3 -c "import six" || echo six is missing' } }], usage: { prompt_tokens: 900, completion_tokens: 30 } },
      // First a submission whose test command writes no report: the harness check refuses it and the loop goes on.
      { toolCalls: [{ name: 'submit', arguments: { install_commands: install, test_command: 'true', runner: 'pytest' } }], usage: { prompt_tokens: 1000, completion_tokens: 40 } },
      { toolCalls: [{ name: 'submit', arguments: { install_commands: install, test_command: testCommand, runner: 'pytest' } }], usage: { prompt_tokens: 1200, completion_tokens: 60 } },
    ]);
    try {
      const dir = join(root, 'undeclared');
      // The tests import a library the manifests never declare: the rule recipe installs, the suite cannot import.
      const [a, b] = await makeRepo(dir, [
        { 'pyproject.toml': PYPROJECT(), 'calc/__init__.py': 'def one():\n    return 1\n', 'tests/test_one.py': 'import six\nfrom calc import one\n\ndef test_one():\n    assert one() == 1 and six.PY3\n' },
        { 'calc/__init__.py': 'def one():\n    return 1  # same\n' },
      ]);
      const llm = agentLlm({ default: { baseURL: srv.baseURL, model: 'scripted-env-builder', maxRetries: 0 }, agents: {} }, 'environment-builder')!;
      const stage = envBuildStage({ sandboxes: factory, repoPath: async (c) => c.clone_url, imagePrefix: prefix, installTimeoutMs: 240_000, suiteTimeoutMs: 120_000, agent: environmentBuilderAgent(llm, { maxSteps: 6 }) });
      const go = (sha: string, n: number) => stage.handle({ key: `acme/undeclared#${n}`, value: { candidate: candidate('acme/undeclared', dir, sha, 'python', n), provenance: [] }, origin: { topic: 'pr.candidates', partition: 0, offset: String(n) }, attempt: 1, signal: new AbortController().signal });
      const o = await go(a, 1);
      expect(o.kind, o.kind === 'rejected' ? o.detail : '').toBe('accepted');
      if (o.kind !== 'accepted') return;
      expect(o.value.environment).toMatchObject({ method: 'agent', cache_hit: false, tests_parsed: 1, test_command: testCommand, install_commands: install });
      expect(o.meta).toMatchObject({ method: 'agent', model: 'scripted-env-builder', tokensIn: 3100, tokensOut: 130 });
      expect(o.value.provenance[0]).toMatchObject({ stage: 'env-build', method: 'agent', prompt_version: 'environment-builder.v1' });
      expect(srv.requests).toHaveLength(3);
      // The refused submission was answered with the harness's reason.
      expect(JSON.stringify(srv.requests[2].body.messages.at(-1))).toMatch(/none passed or failed/);

      const o2 = await go(b, 2);
      expect(o2.kind).toBe('accepted');
      if (o2.kind !== 'accepted') return;
      expect(o2.value.environment).toMatchObject({ method: 'agent', cache_hit: true, test_command: testCommand });
      expect(srv.requests).toHaveLength(3);
    } finally {
      await srv.close();
      const images = await docker.listImages({ filters: { reference: [`${prefix}-*`] } });
      for (const i of images) await docker.getImage(i.Id).remove({ force: true }).catch(() => undefined);
      expect(await docker.listContainers({ all: true, filters: { label: [`swe-stream.test=${runLabel}`] } })).toHaveLength(0);
      await rm(root, { recursive: true, force: true });
    }
  }, 600_000);
});
