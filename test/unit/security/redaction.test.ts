/**
 * Credentials stay out of what is printed, logged and stored: URL userinfo and token shapes are redacted,
 * `git:` source URLs lose their credentials before a source sees them, and git gets them per command.
 */
import { describe, expect, it } from 'vitest';
import { redact, redactValue } from '../../../streams/log.js';
import { GitCredentials, splitUrlCredentials } from '../../../operators/pr/git-exec.js';
import { planSources } from '../../../cli/common.js';

const TOKEN = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';

describe('redact', () => {
  it('removes URL userinfo and token shapes, keeps the rest', () => {
    expect(redact(`cloning https://x-access-token:${TOKEN}@github.com/o/r.git failed`)).toBe('cloning https://***@github.com/o/r.git failed');
    expect(redact('registry http://admin:s3cret@127.0.0.1:8081/apis/ccompat/v7 unreachable')).toBe('registry http://***@127.0.0.1:8081/apis/ccompat/v7 unreachable');
    expect(redact(`token ${TOKEN}`)).not.toContain(TOKEN);
    expect(redact('Authorization: Bearer abcdefghijklmnopqrstuvwxyz')).toBe('Authorization: [redacted]');
    expect(redact('github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz')).toBe('[redacted]');
    expect(redact('gho_abcdefghijklmnopqrstuvwxyz0123')).toBe('[redacted]');
    expect(redact('https://github.com/o/r.git and user@example.com')).toBe('https://github.com/o/r.git and user@example.com');
  });

  it('reaches every string of a logged object, errors included', () => {
    const v = redactValue({ source: `git:https://u:${TOKEN}@h/o/r.git`, nested: [{ url: 'http://a:b@h/' }], n: 3, err: new Error(`at https://u:p@h/x ${TOKEN}`) });
    expect(JSON.stringify(v)).not.toMatch(new RegExp(`${TOKEN}|u:p@|a:b@`));
    expect(v.n).toBe(3);
    expect(v.source).toBe('git:https://***@h/o/r.git');
  });
});

describe('credentials split off git: sources', () => {
  it('splitUrlCredentials keeps the URL and returns the decoded userinfo', () => {
    expect(splitUrlCredentials(`https://x-access-token:${TOKEN}@github.com/o/r.git`)).toEqual({ url: 'https://github.com/o/r.git', username: 'x-access-token', password: TOKEN });
    expect(splitUrlCredentials('https://me:p%40ss@host:8443/r.git')).toEqual({ url: 'https://host:8443/r.git', username: 'me', password: 'p@ss' });
    expect(splitUrlCredentials('git@github.com:o/r.git')).toEqual({ url: 'git@github.com:o/r.git' });
    expect(splitUrlCredentials('/srv/repos/r')).toEqual({ url: '/srv/repos/r' });
  });

  it('planSources cleans git: URIs, lists local paths, and keeps credentials in memory for git', () => {
    const plan = planSources([`git:https://x-access-token:${TOKEN}@git.example.com/o/r.git?limit=3`, 'git:/srv/repos/lib?repo=a/b', 'gharchive:2015-01-01-1'], {});
    expect(plan.uris).toEqual(['git:https://git.example.com/o/r.git?limit=3', 'git:/srv/repos/lib?repo=a/b', 'gharchive:2015-01-01-1']);
    expect(plan.localPaths).toEqual(['/srv/repos/lib']);
    const env = plan.credentials.env();
    expect(env).toEqual({
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.https://git.example.com/o/r.git.extraHeader',
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`,
    });
  });

  it('GITHUB_TOKEN becomes a header for github.com only; nothing without it', () => {
    expect(GitCredentials.fromEnv({}).env()).toEqual({});
    const env = GitCredentials.fromEnv({ GITHUB_TOKEN: TOKEN }).env();
    expect(env.GIT_CONFIG_KEY_0).toBe('http.https://github.com/.extraHeader');
  });
});
