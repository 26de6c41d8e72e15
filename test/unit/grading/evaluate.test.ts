import { describe, expect, it } from 'vitest';
import { parsePredictions, summarizeEvaluation } from '../../../operators/harness/evaluate.js';
import { instanceId } from '../../../operators/verify.js';
import { runnableImage, taskImageRef } from '../../../operators/harness/task-image.js';

describe('parsePredictions', () => {
  it('reads SWE-bench predictions as a JSON array or JSON lines', () => {
    const p = { instance_id: 'a__b-1', model_patch: 'diff', model_name_or_path: 'm' };
    expect(parsePredictions(JSON.stringify([p]))).toEqual([p]);
    expect(parsePredictions(`${JSON.stringify(p)}\n\n${JSON.stringify({ instance_id: 'a__b-2', model_patch: null })}\n`)).toEqual([p, { instance_id: 'a__b-2', model_patch: null, model_name_or_path: undefined }]);
    expect(parsePredictions('')).toEqual([]);
  });

  it('rejects malformed files without retry', () => {
    expect(() => parsePredictions('{not json')).toThrow(expect.objectContaining({ retriable: false }));
    expect(() => parsePredictions('[{"model_patch":"x"}]')).toThrow(/no instance_id/);
  });
});

describe('summarizeEvaluation', () => {
  it('counts like SWE-bench’s report', () => {
    const r = summarizeEvaluation([
      { instance_id: 'x-1', resolved: true },
      { instance_id: 'x-2', resolved: false },
      { instance_id: 'x-3', resolved: false, reason: 'patch-does-not-apply' },
      { instance_id: 'x-4', resolved: false, reason: 'empty-patch' },
      { instance_id: 'x-5', resolved: false, reason: 'unknown-instance' },
      { instance_id: 'x-6', resolved: false, reason: 'error' },
    ], 10);
    expect(r).toMatchObject({
      total_instances: 10, submitted_instances: 6, completed_instances: 3, resolved_instances: 1, unresolved_instances: 2, empty_patch_instances: 1, error_instances: 2,
      resolved_ids: ['x-1'], unresolved_ids: ['x-2', 'x-3'], empty_patch_ids: ['x-4'], error_ids: ['x-5', 'x-6'],
    });
  });
});

describe('ids and images', () => {
  it('names instances and task images', () => {
    expect(instanceId('iamkun/dayjs', 2532)).toBe('iamkun__dayjs-2532');
    expect(taskImageRef('swe-stream/task', 'More-Itertools__more-itertools-7', 'abcdef0123456789')).toBe('swe-stream/task-more-itertools__more-itertools-7:abcdef012345');
    expect(runnableImage('swe-stream/task-x:1@sha256:abc')).toBe('sha256:abc');
    expect(runnableImage('', 'swe-stream/task-x:1')).toBe('swe-stream/task-x:1');
  });
});
