/**
 * Kafka serde: Confluent wire format against a Confluent-compatible schema registry (Apicurio Registry 3.1.7's
 * ccompat v7 API in tests, Confluent Schema Registry in production).
 *
 * Wire format (Confluent docs, "Wire format"): byte 0 = magic 0, bytes 1–4 = schema id (big-endian uint32),
 * then the Avro binary encoding of the value (Avro 1.11 spec, "Binary Encoding"). Subject naming TOPIC:
 * the value schema of topic T lives under subject `T-value`. Retry topics carry their base topic's record
 * type, dead-letter topics DeadLetter (the topology's {@link TopicCatalog}); each has its own subject.
 *
 * Registration is explicit (ARCHITECTURE.md §4): {@link registerSchemas} registers each topic's current
 * self-contained schema from schemas/ and sets the subject's compatibility to FULL_TRANSITIVE, at startup or
 * deploy. The serde itself only LOOKS UP the id of our schema under the subject (`autoRegisterSchemas` false)
 * unless a test turns auto-registration on. Writers always write with the schema this code was built with,
 * never "the latest" (a newer deploy may already have registered a newer version).
 *
 * Registry access goes through @confluentinc/schemaregistry's SchemaRegistryClient (REST, caching). The
 * framing and the Avro encoding are done here with avsc — the library's AvroSerializer validates and walks
 * rule sets per record, which costs more than the encoding on this hot path; the bytes are identical
 * (test/integration/kafka/registry.test.ts decodes the library's output with this serde and vice versa).
 * Decoding resolves the writer schema by id (cached) to the topic's current reader schema.
 */
import { DEFAULT_REGISTRY_URL } from './endpoints.js';
import avro from 'avsc';
// The package index loads every KMS driver (AWS, Azure, GCP SDKs: ~0.5 s); the REST client alone is enough here.
import { SchemaRegistryClient, type Client, type Compatibility } from '@confluentinc/schemaregistry/dist/schemaregistry-client.js';
import { schemaOf, type RecordTypeName } from '../schemas/index.js';
import { logger } from './log.js';
import { SerdeError, type Serde } from './serde.js';
import type { TopicCatalog } from './topics.js';
import { TransportError, type Headers } from './transport.js';

/** Magic byte of the Confluent wire format. */
export const MAGIC_BYTE = 0;
/** Bytes before the Avro payload: magic byte + 4-byte schema id. */
export const HEADER_SIZE = 5;

/** Default registry: SWE_STREAM_REGISTRY_URL or {@link DEFAULT_REGISTRY_URL}. */
export function defaultRegistryUrl(): string {
  return process.env.SWE_STREAM_REGISTRY_URL ?? DEFAULT_REGISTRY_URL;
}

/** Subject of a topic's value schema (TopicNameStrategy). */
export function subjectOf(topic: string): string {
  return `${topic}-value`;
}

/** A SchemaRegistryClient with short, bounded retries (an unreachable registry fails in seconds). */
export function registryClient(url: string): Client {
  return new SchemaRegistryClient({
    baseURLs: [url],
    cacheCapacity: 10_000,
    maxRetries: 2,
    retriesWaitMs: 200,
    retriesMaxWaitMs: 1000,
    createAxiosDefaults: { timeout: 10_000 },
  });
}

/** HTTP status of an axios/RestError, if any. */
function statusOf(err: unknown): number | undefined {
  const e = err as { status?: number; response?: { status?: number } };
  return e?.status ?? e?.response?.status;
}

/** True for failures that mean "could not talk to the registry" (network, timeout, 5xx) rather than a 4xx answer. */
function isUnreachable(err: unknown): boolean {
  const s = statusOf(err);
  return s === undefined || s >= 500;
}

function describe(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return [e?.code, e?.message].filter(Boolean).join(' ') || String(err);
}

export interface RegisterOptions {
  /** Record type per topic: the topology's catalog. */
  catalog: Pick<TopicCatalog, 'recordTypeOf'>;
  /** Compatibility set on every subject. Default FULL_TRANSITIVE. */
  compatibility?: `${Compatibility}`;
  client?: Client;
}

/**
 * Register each topic's current schema under `<topic>-value` and set the subject's compatibility
 * (default FULL_TRANSITIVE). Idempotent: registering an already registered schema returns its id.
 * The compatibility level is set before registering when the subject exists (so the new version is checked
 * against every earlier one), and right after the first registration otherwise.
 * @returns schema id per topic
 * @throws TransportError (retriable) naming the URL when the registry is unreachable;
 *         TransportError (not retriable) when the registry refuses the schema (e.g. incompatible: 409)
 */
export async function registerSchemas(registryUrl: string, topics: string[], opts: RegisterOptions): Promise<Map<string, number>> {
  const client = opts.client ?? registryClient(registryUrl);
  const typeOf = (topic: string) => opts.catalog.recordTypeOf(topic);
  const level = (opts.compatibility ?? 'FULL_TRANSITIVE') as Compatibility;
  const log = logger({ component: 'registry' });
  const ids = new Map<string, number>();
  // Subjects are independent: register them concurrently (a deploy registers ~20).
  await Promise.all(topics.map(async (topic) => {
    const subject = subjectOf(topic);
    const s = schemaOf(typeOf(topic));
    try {
      let exists = true;
      try {
        await client.getLatestSchemaMetadata(subject);
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        exists = false;
      }
      if (exists) await client.updateCompatibility(subject, level);
      const id = await client.register(subject, { schemaType: 'AVRO', schema: s.json }, false);
      if (!exists) await client.updateCompatibility(subject, level);
      ids.set(topic, id);
    } catch (err) {
      if (isUnreachable(err)) {
        throw new TransportError(`schema registry unreachable at ${registryUrl} (registering ${subject}): ${describe(err)}`, true, { cause: err });
      }
      throw new TransportError(`schema registry at ${registryUrl} refused ${s.name} for ${subject}: ${describe(err)}`, false, { cause: err });
    }
  }));
  log.info({ registry: registryUrl, subjects: topics.map((t) => `${subjectOf(t)}#${ids.get(t)}`) }, 'schemas registered');
  return new Map(topics.map((t) => [t, ids.get(t)!]));
}

export interface RegistrySerdeOptions {
  /** Registry base URL (Confluent API). Default {@link defaultRegistryUrl}. */
  url?: string;
  /** Register our schema on first use of a topic. Tests only: default false (schemas are registered at deploy by {@link registerSchemas}). */
  autoRegisterSchemas?: boolean;
  /** Record type per topic: the topology's catalog. */
  catalog: Pick<TopicCatalog, 'recordTypeOf'>;
  client?: Client;
}

interface WriterCodec {
  id: number;
  type: avro.Type;
}

/** A writer schema resolved for one reader: `resolver` null when writer and reader are the same schema. */
interface ReaderCodec {
  reader: avro.Type;
  resolver: avro.Resolver | null;
}

/**
 * Serde for the Kafka transport. Per topic, the schema id of our current schema is looked up once (cached);
 * per schema id, the writer schema is fetched once (cached).
 */
export class RegistrySerde implements Serde {
  readonly url: string;
  readonly client: Client;
  private readonly autoRegister: boolean;
  private readonly typeOf: (topic: string) => RecordTypeName;
  private readonly writers = new Map<string, WriterCodec>();
  private readonly pendingWriters = new Map<string, Promise<WriterCodec>>();
  private readonly readers = new Map<string, ReaderCodec>();
  private readonly pendingReaders = new Map<string, Promise<ReaderCodec>>();
  /** Scratch space for framing: values are encoded after a 5-byte gap, then copied out once. */
  private scratch = Buffer.allocUnsafe(64 * 1024);

  constructor(opts: RegistrySerdeOptions) {
    this.url = opts.url ?? defaultRegistryUrl();
    this.client = opts.client ?? registryClient(this.url);
    this.autoRegister = opts.autoRegisterSchemas ?? false;
    this.typeOf = (topic) => opts.catalog.recordTypeOf(topic);
  }

  private recordType(topic: string): RecordTypeName {
    try {
      return this.typeOf(topic);
    } catch (err) {
      throw new SerdeError(`no record type for topic ${topic}`, false, { cause: err });
    }
  }

  /**
   * Look up (or, with autoRegisterSchemas, register) the schema ids of these topics now, so a missing
   * registration fails at startup instead of at the first record.
   * @throws SerdeError as {@link encode} does
   */
  async prepare(topics: string[]): Promise<void> {
    await Promise.all(topics.map((t) => this.writer(t)));
  }

  private writer(topic: string): WriterCodec | Promise<WriterCodec> {
    const w = this.writers.get(topic);
    if (w) return w;
    let p = this.pendingWriters.get(topic);
    if (!p) {
      p = this.lookupWriter(topic).finally(() => this.pendingWriters.delete(topic));
      this.pendingWriters.set(topic, p);
    }
    return p;
  }

  private async lookupWriter(topic: string): Promise<WriterCodec> {
    const name = this.recordType(topic);
    const s = schemaOf(name);
    const subject = subjectOf(topic);
    const info = { schemaType: 'AVRO', schema: s.json };
    let id: number;
    try {
      id = this.autoRegister ? await this.client.register(subject, info, false) : await this.client.getId(subject, info, false);
    } catch (err) {
      if (isUnreachable(err)) {
        throw new SerdeError(`schema registry unreachable at ${this.url} (looking up ${subject}): ${describe(err)}`, true, { cause: err });
      }
      throw new SerdeError(
        `schema ${name} is not registered under ${subject} at ${this.url} (${describe(err)}); register schemas at deploy (registerSchemas)`,
        false,
        { cause: err },
      );
    }
    const codec = { id, type: s.type };
    this.writers.set(topic, codec);
    return codec;
  }

  /**
   * Confluent-framed Avro of `value` under the topic's current schema. No headers.
   * @throws SerdeError retriable=false when the value does not match the schema or the schema is not registered;
   *         retriable=true when the registry is unreachable
   */
  async encode(topic: string, value: unknown): Promise<{ value: Buffer; headers?: Headers }> {
    const w = this.writers.get(topic) ?? (await this.writer(topic));
    return { value: this.frame(topic, w, value) };
  }

  private frame(topic: string, w: WriterCodec, value: unknown): Buffer {
    for (;;) {
      let pos: number;
      try {
        pos = w.type.encode(value, this.scratch, HEADER_SIZE);
      } catch (err) {
        throw invalidValue(topic, w.type, value, err);
      }
      if (pos >= 0) {
        const out = Buffer.allocUnsafe(pos);
        this.scratch.copy(out, HEADER_SIZE, HEADER_SIZE, pos);
        out[0] = MAGIC_BYTE;
        out.writeUInt32BE(w.id, 1);
        return out;
      }
      // Too small: avsc returns minus the missing byte count.
      this.scratch = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, this.scratch.length - pos + 1024));
    }
  }

  /**
   * Decode Confluent-framed Avro: checks magic byte 0, resolves the writer schema by id (cached) to the
   * topic's current reader schema.
   * @throws SerdeError retriable=false for a wrong magic byte, a short buffer, an unknown id or bytes that
   *         do not decode; retriable=true when the registry is unreachable
   */
  async decode(topic: string, value: Buffer, _headers: Headers): Promise<unknown> {
    if (value.length < HEADER_SIZE || value[0] !== MAGIC_BYTE) {
      throw new SerdeError(
        `record on ${topic} is not in Confluent wire format (${value.length < HEADER_SIZE ? `${value.length} bytes` : `magic byte ${value[0]}`})`,
        false,
      );
    }
    const id = value.readUInt32BE(1);
    const name = this.recordType(topic);
    const key = `${name}\u0000${id}`;
    const rc = this.readers.get(key) ?? (await this.reader(key, name, topic, id));
    try {
      const { value: out, offset } = rc.resolver ? rc.reader.decode(value, HEADER_SIZE, rc.resolver) : rc.reader.decode(value, HEADER_SIZE);
      if (offset !== value.length) throw new Error(offset < 0 ? 'truncated data' : `${value.length - offset} trailing bytes`);
      return out;
    } catch (err) {
      throw new SerdeError(`record on ${topic} does not decode as ${name} (schema id ${id}): ${(err as Error).message}`, false, { cause: err });
    }
  }

  private reader(key: string, name: RecordTypeName, topic: string, id: number): Promise<ReaderCodec> {
    let p = this.pendingReaders.get(key);
    if (!p) {
      p = this.fetchReader(name, topic, id).finally(() => this.pendingReaders.delete(key));
      this.pendingReaders.set(key, p);
    }
    return p;
  }

  private async fetchReader(name: RecordTypeName, topic: string, id: number): Promise<ReaderCodec> {
    const current = schemaOf(name);
    let info;
    try {
      info = await this.client.getBySubjectAndId(subjectOf(topic), id);
    } catch (err) {
      if (isUnreachable(err)) {
        throw new SerdeError(`schema registry unreachable at ${this.url} (fetching schema id ${id}): ${describe(err)}`, true, { cause: err });
      }
      throw new SerdeError(`schema id ${id} of a record on ${topic} is unknown to ${this.url}: ${describe(err)}`, false, { cause: err });
    }
    let rc: ReaderCodec;
    try {
      const writer = avro.Type.forSchema(JSON.parse(info.schema) as avro.Schema);
      const same = (writer.fingerprint('sha256') as Buffer).toString('hex') === current.fingerprint;
      rc = { reader: current.type, resolver: same ? null : current.type.createResolver(writer) };
    } catch (err) {
      throw new SerdeError(`schema id ${id} (writer of a record on ${topic}) cannot be read as ${name}: ${(err as Error).message}`, false, { cause: err });
    }
    this.readers.set(`${name}\u0000${id}`, rc);
    return rc;
  }

  /** Release the client's caches and connections. */
  close(): void {
    this.client.close();
  }
}

/** A SerdeError for a value that does not match its schema, naming the first offending field path. */
function invalidValue(topic: string, type: avro.Type, value: unknown, cause: unknown): SerdeError {
  let where = '';
  type.isValid(value, {
    errorHook: (path: string[]) => {
      if (!where) where = path.join('.') || '(root)';
    },
  });
  const detail = where ? `field ${where} is invalid` : (cause as Error).message;
  return new SerdeError(`value for ${topic} does not match ${type.name ?? 'its schema'}: ${detail}`, false, { cause });
}
