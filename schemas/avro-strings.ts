/**
 * A faster avsc string writer, byte for byte the same encoding (Avro 1.11, "Binary Encoding": a zig-zag
 * varint byte length, then the UTF-8 bytes).
 *
 * avsc 5.7's `Tap#writeString` first measures every string with `Buffer.byteLength` (a native call per
 * string) and then copies it, in JavaScript for byte lengths ≤ 64 and with `utf8Write` above. Records here
 * are mostly short ASCII strings (a PullRequestEvent has ~18 strings of ~25 characters), and that made string
 * writing the largest single cost of bench/stream (~18 % of its CPU). This writer, installed once on avsc's
 * Tap prototype when this module is imported:
 * - a string of fewer than 64 characters that is all ASCII: written in one pass after a 1-byte length
 *   (its byte length is its length, < 64, so the varint is one byte);
 * - 64 to 2,730 characters: `utf8Write` straight after a 2-byte length, then the length filled in (the byte
 *   length is between 64 and 3 × 2,730 = 8,190, so the varint is always two bytes);
 * - anything else (non-ASCII short strings, longer strings, a buffer that might be too small): avsc's own
 *   writer, so lone surrogates, buffer resizing and the invalid-tap protocol stay exactly avsc's.
 * test/unit/serde/avro-strings.test.ts checks the bytes against avsc's writer on edge cases.
 */
import { createRequire } from 'node:module';

/** Node's Buffer has the undocumented `utf8Write(string, offset)` (what `buf.write` calls), returning the bytes written. */
type NodeBuffer = Buffer & { utf8Write?: (s: string, offset: number) => number };

interface Tap {
  buf: NodeBuffer;
  pos: number;
  writeString(s: string): void;
}

const require = createRequire(import.meta.url);
const TapClass = (require('avsc/lib/utils.js') as { Tap?: { prototype: Tap } }).Tap;

/** avsc's own writer (undefined when avsc's internals are not where this module expects them). */
export const avscWriteString: ((this: Tap, s: string) => void) | undefined = TapClass?.prototype.writeString;

function writeString(this: Tap, s: string): void {
  const n = s.length;
  const buf = this.buf;
  const pos = this.pos;
  if (n < 64) {
    if (pos + 1 + n <= buf.length) {
      let p = pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p++] = c;
      }
      if (i === n) {
        buf[pos] = n << 1;
        this.pos = p;
        return;
      }
    }
  } else if (n <= 2730 && pos + 2 + 3 * n <= buf.length && buf.utf8Write !== undefined) {
    const w = buf.utf8Write(s, pos + 2);
    const z = w << 1;
    buf[pos] = (z & 0x7f) | 0x80;
    buf[pos + 1] = z >> 7;
    this.pos = pos + 2 + w;
    return;
  }
  avscWriteString!.call(this, s);
}

/** Whether the faster writer is installed (false only if avsc's internals moved; encoding then stays avsc's). */
export const fastStringWrites = ((): boolean => {
  if (!TapClass || typeof avscWriteString !== 'function') return false;
  TapClass.prototype.writeString = writeString;
  return true;
})();
