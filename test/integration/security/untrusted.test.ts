/**
 * What an untrusted input may not do, through the real `swe-stream run` (embedded log, filter stage):
 *  - a token in a `git:` URL reaches git (a real smart-HTTP server that demands it) but no summary, log
 *    line, record, source cursor or mirror config;
 *  - an event naming a local path as its clone_url does not get it cloned, also offline and also while a
 *    `git:` source names another local repository.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { EmbeddedTransport } from '../../../streams/transports/embedded.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import type { StageOutcome } from '../../../schemas/types.gen.js';
import { createRepo, type GeneratedRepo } from '../../helpers/git-repos.js';
import { startGitHttpServer, type GitHttpServer } from '../../helpers/git-http.js';
import { runCli } from '../../helpers/cli.js';
import { prCatalog } from '../../../operators/pr/topology.js';

const tmp = mkdtempSync(join(tmpdir(), 'swe-stream-untrusted-'));
const repos: GeneratedRepo[] = [];
afterAll(async () => {
  for (const r of repos) await r.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

/** Every file under `dir` (log database with its WAL, mirrors, state), as bytes. */
function allFiles(dir: string): Array<{ path: string; bytes: Buffer }> {
  const out: Array<{ path: string; bytes: Buffer }> = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...allFiles(p));
    else if (st.isFile()) out.push({ path: p, bytes: readFileSync(p) });
  }
  return out;
}

async function outcomes(dataDir: string): Promise<StageOutcome[]> {
  const t = new EmbeddedTransport({ path: join(dataDir, 'log.db') });
  const serde = new EmbeddedSerde({ catalog: prCatalog() });
  const out: StageOutcome[] = [];
  for (const p of await t.topicOffsets('stage.outcomes')) for (const r of await t.read('stage.outcomes', p.partition, '0', 1e6)) out.push((await serde.decode('stage.outcomes', r.value!, r.headers)) as StageOutcome);
  await t.close();
  return out;
}

describe('a token in a git: URL', () => {
  const token = `ghp_${randomBytes(18).toString('hex')}`;
  let server: GitHttpServer;
  let repo: GeneratedRepo;
  beforeAll(async () => {
    repo = await createRepo({ language: 'python', repo: 'acme/private-lib' });
    repos.push(repo);
    const served = join(tmp, 'served');
    execFileSync('git', ['clone', '--quiet', '--mirror', repo.path, join(served, 'acme/private-lib.git')]);
    server = await startGitHttpServer({ root: served, username: 'x-access-token', password: token });
  });
  afterAll(async () => server?.close());

  it('reaches git, and nothing that is printed, logged or stored', async () => {
    const dataDir = join(tmp, 'cred-data');
    const source = `git:${server.url.replace('://', `://x-access-token:${token}@`)}/acme/private-lib.git?repo=acme/private-lib`;
    const r = await runCli(['run', '--stages', 'filter', '--until-idle', '--no-sink', '--data-dir', dataDir, '--source', source]);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { sources: Array<{ uri: string; events: number }>; stages: Array<{ stage: string; accepted: number }> };
    // The clone worked: only the right credentials open this server.
    expect(server.requests).toBeGreaterThan(0);
    expect(summary.sources[0]!.events).toBe(repo.prs.length);
    expect(summary.stages.find((s) => s.stage === 'filter')!.accepted).toBeGreaterThan(0);
    expect(summary.sources[0]!.uri).toBe(`git:${server.url}/acme/private-lib.git?repo=acme/private-lib`);
    const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
    expect(r.stdout).not.toContain(token);
    expect(r.stderr).not.toContain(token);
    expect(r.stderr).toContain('"msg":"source finished"'); // the JSON log was really written
    const files = allFiles(dataDir);
    expect(files.some((f) => f.path.endsWith('log.db'))).toBe(true);
    for (const f of files) {
      expect(f.bytes.includes(token), f.path).toBe(false);
      expect(f.bytes.includes(basic), f.path).toBe(false);
    }
    const config = readFileSync(join(dataDir, 'mirrors/acme/private-lib.git/config'), 'utf8');
    expect(config).toContain(`url = ${server.url}/acme/private-lib.git`);
  });

  it('without the credentials the same server refuses the clone', async () => {
    const before = server.refused;
    const r = await runCli(['run', '--stages', 'filter', '--until-idle', '--no-sink', '--data-dir', join(tmp, 'nocred-data'), '--source', `git:${server.url}/acme/private-lib.git?repo=acme/private-lib`]);
    expect(server.refused).toBeGreaterThan(before);
    expect(r.stdout + r.stderr).not.toContain(token);
  });
});

describe('an event that names a local path as its clone_url', () => {
  it('is repo-unavailable offline, even while a git: source names another local repository', async () => {
    const trusted = await createRepo({ language: 'python', repo: 'acme/trusted' });
    const victim = await createRepo({ language: 'python', repo: 'acme/victim' });
    repos.push(trusted, victim);
    const pr = victim.prs.find((p) => p.kind === 'fix')!;
    const line = {
      id: '1', type: 'PullRequestEvent', created_at: '2024-05-01T12:00:00Z', repo: { id: 1, name: 'acme/victim' }, actor: { login: 'someone' },
      payload: {
        action: 'closed', number: pr.number,
        pull_request: {
          id: 1, number: pr.number, title: pr.title, body: pr.body, merged: true, merged_at: '2024-05-01T12:00:00Z', created_at: '2024-04-30T12:00:00Z',
          merge_commit_sha: pr.prCommit, user: { login: 'someone', type: 'User' },
          base: { ref: 'main', sha: pr.parentCommit, repo: { full_name: 'acme/victim', clone_url: victim.path, license: { spdx_id: 'MIT' } } },
          head: { ref: 'fix', sha: pr.headSha ?? pr.prCommit, repo: { full_name: 'acme/victim', clone_url: victim.path } },
        },
      },
    };
    const file = join(tmp, '2024-05-01-12.json.gz');
    writeFileSync(file, gzipSync(JSON.stringify(line) + '\n'));
    const dataDir = join(tmp, 'local-data');
    const r = await runCli(['run', '--stages', 'filter', '--until-idle', '--no-sink', '--data-dir', dataDir, '--source', `gharchive:${file}`, '--source', `git:${trusted.path}`], { SWE_STREAM_OFFLINE: '1' });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const all = await outcomes(dataDir);
    const victimOutcomes = all.filter((o) => o.key.startsWith('acme/victim#'));
    expect(victimOutcomes).toHaveLength(1);
    expect(victimOutcomes[0]).toMatchObject({ kind: 'rejected', reason: 'repo-unavailable' });
    expect(all.some((o) => o.key.startsWith('acme/trusted#') && o.kind === 'accepted')).toBe(true);
    expect(readdirSync(join(dataDir, 'mirrors/acme'))).not.toContain('victim.git');
  });
});
