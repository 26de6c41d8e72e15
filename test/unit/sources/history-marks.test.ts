import { describe, it, expect } from 'vitest';
import { markOfCommit, parseScanLog } from '../../../operators/pr/history.js';
import type { CommitInfo } from '../../../operators/pr/mirror.js';

const commit = (subject: string, parents: number, body = ''): CommitInfo => ({
  sha: 'a'.repeat(40), parents: Array.from({ length: parents }, (_, i) => String(i + 1).repeat(40)), authorName: 'A', authorEmail: 'a@x',
  authorDate: '2024-01-01T00:00:00Z', committerDate: '2024-01-01T00:00:00Z', subject, body,
});

describe('merged-PR markers in commit messages (GitHub merge and squash messages)', () => {
  it('recognises the merge button, an edited merge subject, the "PR title" merge message and the squash button', () => {
    expect(markOfCommit(commit('Merge pull request #12 from octo/fix-x', 2, 'Fix x\n\nLonger text'))).toEqual({ number: 12, style: 'merge', title: 'Fix x', body: 'Longer text', headRef: 'octo/fix-x' });
    expect(markOfCommit(commit('Release Merge pull request #719 from iamkun/dev', 2))).toMatchObject({ number: 719, style: 'merge', headRef: 'iamkun/dev' });
    expect(markOfCommit(commit('D2M (#3177)', 2))).toMatchObject({ number: 3177, style: 'merge', title: 'D2M', headRef: null });
    expect(markOfCommit(commit('Fix the parser (#45)', 1, 'body'))).toEqual({ number: 45, style: 'squash', title: 'Fix the parser', body: 'body', headRef: null });
  });
  it('ignores everything else: a merge subject on a one-parent commit, a quoted revert, a plain merge', () => {
    expect(markOfCommit(commit('Merge pull request #12 from octo/fix-x', 1))).toBeNull();
    expect(markOfCommit(commit('Revert "Fix the parser (#45)"', 1))).toBeNull();
    expect(markOfCommit(commit("Merge branch 'main' into dev", 2))).toBeNull();
    expect(markOfCommit(commit('Fix #45 in the parser', 1))).toBeNull();
  });
  it('parses git log --source records with author epoch and committer e-mail', () => {
    const rec = ['b'.repeat(40), `${'c'.repeat(40)} ${'d'.repeat(40)}`, 'Ann', 'ann@x', '2024-01-01T00:00:00+00:00', '2024-01-02T00:00:00+00:00', '1704067200', 'noreply@github.com', 'refs/heads/main', 'Subject line\n\nBody text\n'].join('\0');
    expect(parseScanLog(`${rec}\x1e\n`)).toEqual([{
      sha: 'b'.repeat(40), parents: ['c'.repeat(40), 'd'.repeat(40)], authorName: 'Ann', authorEmail: 'ann@x', authorDate: '2024-01-01T00:00:00+00:00',
      committerDate: '2024-01-02T00:00:00+00:00', authorEpoch: 1704067200, committerEmail: 'noreply@github.com', source: 'refs/heads/main', subject: 'Subject line', body: 'Body text',
    }]);
  });
});
