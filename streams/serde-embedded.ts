/**
 * Embedded serde: plain Avro binary (Avro 1.11 spec, "Binary Encoding") with the writer schema named by a
 * header, `swe-schema: <fingerprint>` — SHA-256 of the Avro parsing canonical form, hex (schemas/index.ts).
 *
 * Decoding looks the fingerprint up among the current schemas and every version in schemas/history/, and
 * resolves the writer schema to the current reader schema (avsc `createResolver`, Avro "Schema Resolution").
 * Fast path: when the writer is the current schema (the normal case), the bytes are decoded directly.
 *
 * Hot path of the embedded benchmark (≥ 50,000 records/s through a stage): per record, encode allocates only
 * the output buffer (encoded into a reused scratch buffer, then copied out once), decode only the value; topic → schema lookups are cached and the
 * headers object is shared per topic (callers must not mutate it).
 */
import type avro from 'avsc';
import { loadHistory } from '../schemas/history/index.js';
import { schemaOf, type RecordTypeName } from '../schemas/index.js';
import { SerdeError, type Serde } from './serde.js';
import type { TopicCatalog } from './topics.js';
import type { Headers } from './transport.js';

/** Header that carries the writer schema's fingerprint. */
export const SCHEMA_HEADER = 'swe-schema';

interface TopicCodec {
  recordType: RecordTypeName;
  type: avro.Type;
  fingerprint: string;
  /** Shared, frozen: `{ 'swe-schema': fingerprint }`. */
  headers: Headers;
  /** Resolvers from historical writer schemas to the current reader, by writer fingerprint (lazy). */
  resolvers: Map<string, avro.Resolver>;
}

/**
 * The embedded transport's serde. Stateless apart from caches; one instance per process is enough.
 * Encoding errors and undecodable bytes throw {@link SerdeError} with retriable=false (the runtime
 * dead-letters the record).
 */
/** Bytes of one encoding slab (values up to a quarter of it are encoded into it; views keep it alive). */
const SLAB_BYTES = 256 * 1024;

export class EmbeddedSerde implements Serde {
  private readonly codecs = new Map<string, TopicCodec>();
  /** Writer types of every known version (current and history) by fingerprint, per record type. */
  private readonly writers = new Map<RecordTypeName, Map<string, avro.Type>>();
  /** Encoding scratch space for values larger than a quarter slab (grows to the largest value seen). */
  private scratch = Buffer.allocUnsafe(64 * 1024);
  /** Slab that small values are encoded into and handed out as views: no allocation and no copy per value. */
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  private slabPos = 0;

  /**
   * @param opts.catalog record type per topic (the topology's catalog, handed in by the composition root)
   * @param opts.historyDir folder of `<RecordType>.v<N>.avsc` writer schemas (default schemas/history/; tests pass their own)
   */
  constructor(private readonly opts: { catalog: TopicCatalog; historyDir?: string }) {}

  /** Per-topic codec; @throws SerdeError for a topic not in the catalog. */
  private codec(topic: string): TopicCodec {
    let c = this.codecs.get(topic);
    if (c) return c;
    let recordType: RecordTypeName;
    try {
      recordType = this.opts.catalog.recordTypeOf(topic);
    } catch (err) {
      throw new SerdeError(`no record type for topic ${topic}`, false, { cause: err });
    }
    const s = schemaOf(recordType);
    c = { recordType, type: s.type, fingerprint: s.fingerprint, headers: Object.freeze({ [SCHEMA_HEADER]: s.fingerprint }), resolvers: new Map() };
    this.codecs.set(topic, c);
    return c;
  }

  private writerTypes(recordType: RecordTypeName): Map<string, avro.Type> {
    let m = this.writers.get(recordType);
    if (!m) {
      m = new Map();
      for (const h of loadHistory(this.opts.historyDir).get(recordType) ?? []) m.set(h.fingerprint, h.type);
      this.writers.set(recordType, m);
    }
    return m;
  }

  /**
   * Avro binary of `value` under the topic's current schema, plus the fingerprint header.
   * @throws SerdeError (retriable=false) naming the first invalid field path when the value does not match
   */
  encode(topic: string, value: unknown): Promise<{ value: Buffer; headers?: Headers }> {
    try {
      return Promise.resolve(this.encodeSync(topic, value));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Synchronous {@link encode} for callers that batch (no promise per record). */
  encodeSync(topic: string, value: unknown): { value: Buffer; headers: Headers } {
    const c = this.codec(topic);
    // Small values: straight into the slab, returned as a view of it. A new slab when this one is full; a value
    // that does not fit a quarter slab goes the scratch way below.
    for (let fresh = false; ; fresh = true) {
      const start = this.slabPos;
      let end: number;
      try {
        end = c.type.encode(value, this.slab, start);
      } catch (err) {
        throw invalidValue(topic, c, value, err);
      }
      if (end >= 0) {
        this.slabPos = end;
        return { value: this.slab.subarray(start, end), headers: c.headers };
      }
      if (fresh || -end > SLAB_BYTES / 4) break;
      this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.slabPos = 0;
    }
    // Into a reused scratch buffer, then one exact copy out (avsc's toBuffer zero-fills its result and
    // writes twice when the value exceeds its 1 KiB scratch).
    let pos: number;
    for (;;) {
      try {
        pos = c.type.encode(value, this.scratch, 0);
      } catch (err) {
        throw invalidValue(topic, c, value, err);
      }
      if (pos >= 0) break;
      // Too small: avsc returns minus the missing byte count.
      this.scratch = Buffer.allocUnsafe(Math.max(2 * this.scratch.length, this.scratch.length - pos + 1024));
    }
    const out = Buffer.allocUnsafe(pos);
    this.scratch.copy(out, 0, 0, pos);
    return { value: out, headers: c.headers };
  }

  /**
   * Decode bytes written by {@link encode} with the current or any historical schema of the topic's record type.
   * @throws SerdeError (retriable=false) when the header is missing, the fingerprint unknown, or the bytes do not decode
   */
  decode(topic: string, value: Buffer, headers: Headers): Promise<unknown> {
    try {
      return Promise.resolve(this.decodeSync(topic, value, headers));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Synchronous {@link decode}. */
  decodeSync(topic: string, value: Buffer, headers: Headers): unknown {
    const c = this.codec(topic);
    const fp = headers[SCHEMA_HEADER];
    try {
      if (fp === c.fingerprint) return c.type.fromBuffer(value);
      if (fp === undefined) throw new SerdeError(`record on ${topic} has no ${SCHEMA_HEADER} header; cannot tell its writer schema`, false);
      let resolver = c.resolvers.get(fp);
      if (!resolver) {
        const writer = this.writerTypes(c.recordType).get(fp);
        if (!writer) {
          throw new SerdeError(`record on ${topic} was written with unknown ${c.recordType} schema ${fp} (not current, not in schemas/history/)`, false);
        }
        resolver = c.type.createResolver(writer);
        c.resolvers.set(fp, resolver);
      }
      return c.type.fromBuffer(value, resolver);
    } catch (err) {
      if (err instanceof SerdeError) throw err;
      throw new SerdeError(`record on ${topic} does not decode as ${c.recordType}: ${(err as Error).message}`, false, { cause: err });
    }
  }
}

/** A SerdeError for a value that does not match its schema, naming the first offending field path. */
function invalidValue(topic: string, c: TopicCodec, value: unknown, cause: unknown): SerdeError {
  let where = '';
  c.type.isValid(value, {
    errorHook: (path: string[]) => {
      if (!where) where = path.join('.') || '(root)';
    },
  });
  const detail = where ? `field ${where} is invalid` : (cause as Error).message;
  return new SerdeError(`value for ${topic} does not match ${c.recordType}: ${detail}`, false, { cause });
}
