import { describe, it, expect } from 'vitest';
import { isBranchSync } from '../../../operators/filter.js';

describe('branch-sync merges', () => {
  it('recognises a dev → master release merge of the same repository (dayjs "D2M")', () => {
    expect(isBranchSync('iamkun/dayjs', 'iamkun/dev')).toBe(true);
    expect(isBranchSync('pallets/click', 'pallets/stable')).toBe(true);
    expect(isBranchSync('pallets/click', 'pallets/8.1.x')).toBe(true);
    expect(isBranchSync('acme/x', 'acme/release/2.0')).toBe(true);
  });
  it('keeps feature branches and forks whose branch happens to be called dev', () => {
    expect(isBranchSync('iamkun/dayjs', 'someone/fix-parse')).toBe(false);
    expect(isBranchSync('iamkun/dayjs', 'someone/dev')).toBe(false);
    expect(isBranchSync('iamkun/dayjs', 'fix-timezone')).toBe(false);
    // owner unknown (GH Archive / API head_ref is the bare branch): a fork's master is one change
    expect(isBranchSync('iamkun/dayjs', 'master')).toBe(false);
    expect(isBranchSync('iamkun/dayjs', null)).toBe(false);
    expect(isBranchSync('acme/x', 'contributor1/fix-clamp')).toBe(false);
  });
});
