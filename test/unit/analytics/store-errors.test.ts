import { describe, expect, it } from 'vitest';
import { toStoreError, ClickHouseStoreError } from '../../../connectors/sinks/connection.js';

describe('ClickHouse error classification', () => {
  it('transport failures are retriable', () => {
    const e = toStoreError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' }), 'insert failed');
    expect(e).toBeInstanceOf(ClickHouseStoreError);
    expect(e).toMatchObject({ retriable: true, code: 'ECONNREFUSED', message: 'insert failed: connect ECONNREFUSED 127.0.0.1:8123' });
  });
  it('18.16-style server errors: busy codes retriable, the rest not', () => {
    expect(toStoreError(new Error('Code: 252, e.displayText() = DB::Exception: Too many parts'), 'x')).toMatchObject({ retriable: true, code: '252' });
    expect(toStoreError(new Error('Code: 62, e.displayText() = DB::Exception: Syntax error'), 'x')).toMatchObject({ retriable: false, code: '62' });
  });
  it('chDB query errors are not retriable', () => {
    const e = new Error('Code: 60. DB::Exception: Unknown table');
    e.name = 'ChdbQueryError';
    expect(toStoreError(e, 'x').retriable).toBe(false);
  });
  it('is idempotent', () => {
    const e = new ClickHouseStoreError('boom', { retriable: false });
    expect(toStoreError(e, 'x')).toBe(e);
  });
});
