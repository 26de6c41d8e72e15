/** Sample record values for serde tests (a PullRequestEvent shaped like one from GH Archive). */
import type { PullRequestEvent } from '../../../schemas/types.gen.js';

export function samplePrEvent(n = 1): PullRequestEvent {
  return {
    pr_id: `octo/repo#${n}`,
    repo: 'octo/repo',
    number: n,
    action: 'closed',
    source: 'gharchive',
    source_event_id: String(2489582596 + n),
    event_time: '2015-01-01T12:00:00Z',
    payload_shape: 'full',
    merged: true,
    merged_at: '2015-01-01T11:59:00Z',
    merge_commit_sha: 'a'.repeat(40),
    base_ref: 'main',
    base_sha: 'b'.repeat(40),
    head_ref: 'fix-thing',
    head_sha: 'c'.repeat(40),
    title: 'Fix the thing when the input is empty',
    body: 'Fixes #12. The parser crashed on an empty string.',
    user_login: 'someone',
    user_type: 'User',
    created_at: '2014-12-31T10:00:00Z',
    clone_url: 'https://github.com/octo/repo.git',
    linked_issues: [],
    labels: ['bug'],
    license: 'MIT',
    merge_style: null,
    files: null,
  };
}
