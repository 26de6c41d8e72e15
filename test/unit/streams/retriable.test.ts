import { describe, expect, it } from 'vitest';
import { fail, isRetriable, StageError } from '../../../streams/types.js';
import { TransportError } from '../../../streams/transport.js';

describe('isRetriable', () => {
  it('never retries programming errors, even when they claim otherwise', () => {
    expect(isRetriable(new TypeError('x is not a function'))).toBe(false);
    expect(isRetriable(new RangeError('bad length'))).toBe(false);
    expect(isRetriable(new ReferenceError('y is not defined'))).toBe(false);
    expect(isRetriable(new SyntaxError('Unexpected token'))).toBe(false);
    expect(isRetriable(Object.assign(new TypeError('oops'), { retriable: true }))).toBe(false);
  });

  it("treats undici's TypeError('fetch failed') with a socket cause as an outage", () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(isRetriable(new TypeError('fetch failed', { cause }))).toBe(true);
    expect(isRetriable(new TypeError('fetch failed'))).toBe(false);
  });

  it('follows an explicit retriable flag, and retries unknown errors', () => {
    expect(isRetriable(new StageError('x', { retriable: false }))).toBe(false);
    expect(isRetriable(new StageError('x', { retriable: true }))).toBe(true);
    expect(isRetriable(new TransportError('down', true))).toBe(true);
    expect(isRetriable(new TransportError('refused', false))).toBe(false);
    expect(isRetriable(new Error('something unknown'))).toBe(true);
    expect(isRetriable('a string')).toBe(true);
  });

  it('is what fail() uses when no flag is given', () => {
    expect(fail(new TypeError('bug'))).toMatchObject({ kind: 'failed', retriable: false, error: { name: 'TypeError' } });
    expect(fail(new Error('outage'))).toMatchObject({ kind: 'failed', retriable: true });
    expect(fail(new TypeError('bug'), true)).toMatchObject({ retriable: true });
  });
});
