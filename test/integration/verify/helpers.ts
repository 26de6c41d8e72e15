/**
 * Helpers for the verify integration tests: small generated git repositories (deterministic commit ids:
 * fixed author/committer dates), environment images built from the offline base images with the test
 * runners installed from the package registries, and the records the stages consume.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Candidate, Environment, EnvironmentReady, TestsReady } from '../../../schemas/types.gen.js';
import type { Stage } from '../../../streams/stage.js';
import type { SandboxFactory } from '../../../operators/sandbox/types.js';
import { parseDiff } from '../../../operators/pr/patch.js';
import type { Envelope } from '../../../streams/types.js';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 't@example.com',
  GIT_AUTHOR_DATE: '2025-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2025-01-01T00:00:00Z',
};

/** Run git in `cwd`; returns trimmed stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8', maxBuffer: 64 << 20 }).trim();
}

/** Files to write (string) or delete (null), relative to the repository root. */
export type Tree = Record<string, string | null>;

/** A generated repository on the host: one base branch plus PR branches off a parent commit. */
export class GenRepo {
  readonly dir: string;
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'swe-verify-repo-'));
    git(this.dir, 'init', '-q', '-b', 'main');
  }

  /** Write `tree` and commit on the current branch; returns the commit id. */
  commit(tree: Tree, message: string): string {
    for (const [p, content] of Object.entries(tree)) {
      const abs = join(this.dir, p);
      if (content === null) rmSync(abs, { force: true });
      else {
        mkdirSync(dirname(abs), { recursive: true });
        writeFileSync(abs, content);
      }
    }
    git(this.dir, 'add', '-A');
    git(this.dir, 'commit', '-q', '-m', message);
    return git(this.dir, 'rev-parse', 'HEAD');
  }

  /** A PR: branch `name` off `parent` with one commit; returns its id. The checkout goes back to main. */
  pr(name: string, parent: string, tree: Tree): string {
    git(this.dir, 'checkout', '-q', '-b', name, parent);
    const sha = this.commit(tree, `${name} (#1)`);
    git(this.dir, 'checkout', '-q', 'main');
    return sha;
  }

  diff(from: string, to: string): string {
    return git(this.dir, 'diff', '--no-color', '--no-ext-diff', from, to) + '\n';
  }

  /** A git bundle of every branch. */
  bundle(): Buffer {
    const f = join(this.dir, '..', `${this.dir.split('/').pop()}.bundle`);
    git(this.dir, 'bundle', 'create', '-q', f, '--all');
    const b = readFileSync(f);
    rmSync(f);
    return b;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * An environment image: the base image, `setup` run with the network on (runner installs), the repo
 * cloned from a bundle into `workdir` and checked out at `checkout`, then `postClone` in the workdir
 * (network still on: `npm install`). Cached by a hash of the inputs, so
 * reruns of the suite on one engine build it once.
 */
export async function buildEnvImage(opts: { sandboxes: SandboxFactory; base: string; setup: string; repo: GenRepo; checkout: string; workdir: string; name: string; postClone?: string }): Promise<{ ref: string; id: string }> {
  const bundle = opts.repo.bundle();
  const hash = createHash('sha256').update(opts.base).update(opts.setup).update(git(opts.repo.dir, 'show-ref')).update(opts.checkout).update(opts.postClone ?? '').digest('hex').slice(0, 12);
  const ref = `swe-stream-test/env-${opts.name}:${hash}`;
  const have = await opts.sandboxes.imageId(ref);
  if (have) return { ref, id: have };
  const sb = await opts.sandboxes.create({ image: opts.base, network: true });
  try {
    const s = await sb.exec(opts.setup, { timeoutMs: 600_000 });
    if (s.exitCode !== 0) throw new Error(`env setup failed (${s.exitCode}): ${s.stdout.slice(-2000)}\n${s.stderr.slice(-2000)}`);
    await sb.writeFile('/tmp/repo.bundle', bundle);
    const c = await sb.exec(`set -e; git clone -q /tmp/repo.bundle ${opts.workdir}; cd ${opts.workdir}; git checkout -q --detach ${opts.checkout}; rm /tmp/repo.bundle`, { timeoutMs: 120_000 });
    if (c.exitCode !== 0) throw new Error(`clone failed: ${c.stderr}`);
    if (opts.postClone) {
      const p = await sb.exec(opts.postClone, { timeoutMs: 600_000, cwd: opts.workdir });
      if (p.exitCode !== 0) throw new Error(`post-clone setup failed (${p.exitCode}): ${p.stdout.slice(-2000)}\n${p.stderr.slice(-2000)}`);
    }
    const { imageId } = await sb.commit(ref);
    return { ref, id: imageId };
  } finally {
    await sb.destroy();
  }
}

/** Classify like the filter does: test directories / test file names → test. */
export function kindOf(path: string): string {
  return /(^|\/)(tests?|__tests__)\/|\.(test|spec)\.[cm]?[jt]s$|(^|\/)test_[^/]*\.py$/.test(path) ? 'test' : 'code';
}

/** A candidate for the PR `parent..pr` of `repo` (diff, files, kinds). */
export function candidateOf(repo: GenRepo, opts: { name: string; number: number; parent: string; pr: string; language: string; diff?: string }): Candidate {
  const diff = opts.diff ?? repo.diff(opts.parent, opts.pr);
  const files = parseDiff(diff).map((f) => ({ path: f.path, old_path: f.oldPath === f.path ? null : f.oldPath, kind: kindOf(f.path), status: f.status, additions: f.additions, deletions: f.deletions, hunks: f.hunks.length, binary: f.binary, vendored: false }));
  return {
    pr_id: `acme/${opts.name}#${opts.number}`, repo: `acme/${opts.name}`, number: opts.number, clone_url: `https://example.com/acme/${opts.name}.git`, language: opts.language,
    pr_commit: opts.pr, parent_commit: opts.parent, head_sha: null, title: `PR ${opts.number}`, body: '', user_login: null, created_at: null, merged_at: null, linked_issues: [],
    files, size: { files: files.length, hunks: 0, lines_added: 0, lines_removed: 0 }, diff, patch_hash: 'x', license: null, merge_style: null,
  };
}

/** The Environment record of an image built by {@link buildEnvImage}. */
export function environmentOf(img: { ref: string; id: string }, o: { language: string; runner: string; workdir: string; preCommands?: string[]; invocations?: Environment['test_invocations'] }): Environment {
  return {
    language: o.language, base_image: 'base', image_ref: img.ref, image_id: img.id, recipe_hash: 'test', workdir: o.workdir, install_commands: [], pre_commands: o.preCommands ?? [],
    test_command: '', runner: o.runner, report_format: 'junit', package_manager: null, node_version: null, python_version: null, method: 'rules', cache_hit: false, build_ms: 0, tests_parsed: 1, build_log_tail: '', test_invocations: o.invocations ?? null, toolchain_source: null, install_notes: null, package_dirs: null,
  };
}

export function readyOf(candidate: Candidate, environment: Environment): EnvironmentReady {
  return { candidate, environment, provenance: [] };
}

/** An envelope as the runtime would hand it to a stage. */
export function envelope<T>(value: T, key = 'k'): Envelope<T> {
  return { key, value, origin: { topic: 't', partition: 0, offset: '0' }, attempt: 1, signal: new AbortController().signal };
}

/** What test-create made of a candidate in an environment; throws with the outcome when it did not accept. */
export async function testsReadyFrom(tc: Stage<EnvironmentReady, TestsReady>, candidate: Candidate, environment: Environment): Promise<TestsReady> {
  const out = await tc.handle(envelope(readyOf(candidate, environment)));
  if (out.kind !== 'accepted') throw new Error(`test-create: ${JSON.stringify(out)}`);
  return out.value;
}

/** An env image's post-clone step installing npm test runners (`npm install --no-save`), its log's tail on failure. */
export function npmRunners(...packages: string[]): string {
  return `npm install --no-audit --no-fund --no-save ${packages.join(' ')} >/tmp/npm.log 2>&1 || { tail -50 /tmp/npm.log; exit 1; }`;
}
