/**
 * The outcome vocabulary of a task re-validation (ARCHITECTURE.md §8 "living dataset"). Both the harness
 * that classifies a re-validation (operators/harness/revalidate.ts) and the dataset store that records and
 * reads it (connectors/dataset/store.ts, table `revalidations` of infra/clickhouse/004_revalidations.sql)
 * need it; it lives here because schemas/ is the one layer both may import.
 */

/**
 * Outcome of one re-validation: `stable`; `not-resolving` (the gold patch did not resolve in some run);
 * `resolves-empty` (the empty patch resolved in some run); `flipped` (a FAIL_TO_PASS or PASS_TO_PASS test
 * changed outcome between runs of the same patch); `infra-failure` (the image could not be pulled or a
 * container could not start or run).
 */
export type RevalidationOutcome = 'stable' | 'not-resolving' | 'resolves-empty' | 'flipped' | 'infra-failure';

/** Outcomes that retire a task from later releases. `infra-failure` never does: the next re-validation tries again. */
export const RETIRING_OUTCOMES: readonly RevalidationOutcome[] = ['not-resolving', 'resolves-empty', 'flipped'];
