/**
 * schemas/avro-strings.ts: the faster avsc string writer writes exactly the bytes avsc's own writer does, and
 * leaves a too-small buffer to avsc's invalid-tap protocol (encode() returns minus the missing bytes).
 */
import avro from 'avsc';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { avscWriteString, fastStringWrites } from '../../../schemas/avro-strings.js';
import { schemaOf } from '../../../schemas/index.js';
import { samplePrEvent } from './sample.js';

const STRINGS = [
  '',
  'a',
  'x'.repeat(63),
  'x'.repeat(64),
  'x'.repeat(65),
  'é',
  'é'.repeat(31),
  'é'.repeat(32),
  'é'.repeat(63),
  'é'.repeat(64),
  '日本語'.repeat(21),
  '日本語'.repeat(22),
  '😀'.repeat(31),
  '😀'.repeat(32),
  '\ud800', // lone high surrogate
  'ab\udc00cd',
  'a'.repeat(62) + '\ud83d',
  'a'.repeat(2730),
  'a'.repeat(2731),
  '€'.repeat(2730),
  '€'.repeat(2731),
  'a'.repeat(10_000),
  '\u007f\u0080',
];

const Tap = (createRequire(import.meta.url)('avsc/lib/utils.js') as { Tap: { prototype: { writeString: unknown } } }).Tap.prototype;

/** The bytes of `s` as `type` encodes it, with the writer installed, then with avsc's own. */
function both(s: string, type: avro.Type = avro.Type.forSchema('string')): [Buffer, Buffer] {
  const fast = type.toBuffer(s);
  const mine = Tap.writeString;
  Tap.writeString = avscWriteString;
  try {
    return [fast, type.toBuffer(s)];
  } finally {
    Tap.writeString = mine;
  }
}

describe('fast avsc string writes', () => {
  it('is installed', () => {
    expect(fastStringWrites).toBe(true);
  });

  it.each(STRINGS.map((s) => [s.length, s]))('writes the same bytes as avsc (%i characters)', (_n, s) => {
    const [fast, orig] = both(s as string);
    expect(fast.equals(orig)).toBe(true);
    expect(Tap.writeString).not.toBe(avscWriteString);
  });

  it('writes whole records the same way', () => {
    const type = schemaOf('PullRequestEvent').type;
    for (let i = 0; i < 50; i++) {
      const v = { ...samplePrEvent(i), title: 'ü'.repeat(i * 7), body: 'b'.repeat(i * 61) };
      const [fast, orig] = both(v as never, type);
      expect(fast.equals(orig)).toBe(true);
    }
  });

  it('reports a too-small buffer the way avsc does', () => {
    const type = avro.Type.forSchema('string');
    for (const s of ['x'.repeat(40), 'x'.repeat(100), 'é'.repeat(40)]) {
      for (const size of [0, 1, 10, 41, 60, 101]) {
        const want = type.toBuffer(s).length;
        const got = type.encode(s, Buffer.alloc(size), 0);
        if (size >= want) expect(got).toBe(want);
        else expect(got).toBeLessThan(0);
      }
    }
  });
});
