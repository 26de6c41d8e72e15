import type { PullRequestEvent } from '../../schemas/types.gen.js';

/** A minimal valid PullRequestEvent for transport/runtime tests. */
export function prEvent(n: number, overrides: Partial<PullRequestEvent> = {}): PullRequestEvent {
  return {
    pr_id: `acme/widgets#${n}`,
    repo: 'acme/widgets',
    number: n,
    action: 'closed',
    source: 'test',
    source_event_id: String(n),
    event_time: null,
    payload_shape: 'full',
    merged: n % 2 === 0,
    merged_at: null,
    merge_commit_sha: null,
    base_ref: null,
    base_sha: null,
    head_ref: null,
    head_sha: null,
    title: `PR ${n}`,
    body: null,
    user_login: null,
    user_type: null,
    created_at: null,
    clone_url: null,
    linked_issues: [],
    labels: [],
    license: null,
    merge_style: null,
    files: null,
    ...overrides,
  };
}
