/**
 * Registry serde against the real Apicurio registry (Confluent ccompat API) and the real broker:
 * subjects `<topic>-value` with FULL_TRANSITIVE, Confluent wire format on the raw bytes, byte-for-byte
 * interoperability with @confluentinc/schemaregistry's own AvroSerializer/AvroDeserializer, writer-schema
 * resolution by id, and clear errors.
 */
import {
  AvroDeserializer,
  AvroSerializer,
  SchemaRegistryClient,
  SerdeType,
  SubjectNameStrategyType,
} from '@confluentinc/schemaregistry';
import avro from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schemaOf, type RecordTypeName } from '../../../schemas/index.js';
import { SerdeError } from '../../../streams/serde.js';
import { registerSchemas, registryClient, RegistrySerde, subjectOf } from '../../../streams/serde-registry.js';
import { allTopics, prCatalog } from '../../../operators/pr/topology.js';

const PR = prCatalog();
const recordTypeOf = (topic: string): RecordTypeName => PR.recordTypeOf(topic);
import { TransportError } from '../../../streams/transport.js';
import { KafkaTransport } from '../../../streams/transports/kafka.js';
import { samplePrEvent } from '../../unit/serde/sample.js';
import { BROKERS, REGISTRY_URL, uniq } from './helpers.js';

/** Test topics are `<prefix>.<catalog topic>`, so they get the catalog's record types but subjects of their own. */
const prefix = uniq('t');
const typeOf = (topic: string): RecordTypeName => recordTypeOf(topic.slice(prefix.length + 1));
const events = `${prefix}.pr.events`;
const retry = `${prefix}.pr.events.retry.filter`;
const dlq = `${prefix}.pr.events.dlq`;

let ids: Map<string, number>;
const client = registryClient(REGISTRY_URL);

beforeAll(async () => {
  ids = await registerSchemas(REGISTRY_URL, [events, retry, dlq], { catalog: { recordTypeOf: typeOf } });
});
afterAll(() => client.close());

describe('registerSchemas', () => {
  it('registers every catalog topic as <topic>-value with compatibility FULL_TRANSITIVE', async () => {
    const topics = allTopics();
    const got = await registerSchemas(REGISTRY_URL, topics, { catalog: PR });
    expect([...got.keys()].sort()).toEqual([...topics].sort());
    const subjects = await client.getAllSubjects();
    for (const topic of topics) {
      expect(subjects).toContain(subjectOf(topic));
      expect(await client.getCompatibility(subjectOf(topic))).toBe('FULL_TRANSITIVE');
    }
    // Idempotent: the same schema keeps its id.
    expect(await registerSchemas(REGISTRY_URL, topics, { catalog: PR })).toEqual(got);
  });

  it('retry topics carry the base record type, DLQ topics DeadLetter', async () => {
    const latest = async (t: string) => JSON.parse((await client.getLatestSchemaMetadata(subjectOf(t))).schema) as { name: string };
    expect((await latest(events)).name).toMatch(/PullRequestEvent$/);
    expect((await latest(retry)).name).toMatch(/PullRequestEvent$/);
    expect((await latest(dlq)).name).toMatch(/DeadLetter$/);
    expect(ids.get(events)).toBe(ids.get(retry)); // same schema text → same id
  });

  it('the registry refuses an incompatible next version (new required field) under FULL_TRANSITIVE', async () => {
    const changed = JSON.parse(schemaOf('PullRequestEvent').json) as { fields: unknown[] };
    changed.fields.push({ name: 'reviewers_count', type: 'int' });
    await expect(client.register(subjectOf(events), { schemaType: 'AVRO', schema: JSON.stringify(changed) }, false)).rejects.toBeDefined();
  });
});

describe('RegistrySerde', () => {
  const serde = new RegistrySerde({ url: REGISTRY_URL, catalog: { recordTypeOf: typeOf } });

  it('writes Confluent wire format: magic byte 0, the registered schema id, then Avro binary', async () => {
    const value = samplePrEvent(1);
    const { value: bytes, headers } = await serde.encode(events, value);
    expect(headers).toBeUndefined();
    expect(bytes[0]).toBe(0);
    expect(bytes.readUInt32BE(1)).toBe(ids.get(events));
    expect(bytes.subarray(5).equals(schemaOf('PullRequestEvent').type.toBuffer(value))).toBe(true);
    expect({ ...((await serde.decode(events, bytes, {})) as object) }).toEqual(value);
  });

  it('round-trips through Kafka (produce, read raw bytes, decode)', async () => {
    const t = new KafkaTransport({ brokers: BROKERS });
    try {
      await t.ensureTopics([{ name: events, partitions: 1 }]);
      const values = [samplePrEvent(10), samplePrEvent(11)];
      await t.produce(await Promise.all(values.map(async (v) => ({ topic: events, key: v.pr_id, value: (await serde.encode(events, v)).value }))));
      const got = await t.read(events, 0, '0', 10);
      expect(got).toHaveLength(2);
      for (const [i, r] of got.entries()) {
        expect(r.value![0]).toBe(0);
        expect(r.value!.readUInt32BE(1)).toBe(ids.get(events));
        expect(r.key).toBe(values[i]!.pr_id);
        expect({ ...((await serde.decode(events, r.value!, r.headers)) as object) }).toEqual(values[i]);
      }
    } finally {
      await t.close();
    }
  });

  it("is byte-compatible with the library's AvroSerializer / AvroDeserializer", async () => {
    const lib = new SchemaRegistryClient({ baseURLs: [REGISTRY_URL] });
    const conf = { autoRegisterSchemas: false, useLatestVersion: true, subjectNameStrategyType: SubjectNameStrategyType.TOPIC };
    const ser = new AvroSerializer(lib, SerdeType.VALUE, conf);
    const de = new AvroDeserializer(lib, SerdeType.VALUE, { subjectNameStrategyType: SubjectNameStrategyType.TOPIC });
    const value = samplePrEvent(5);
    const theirs = await ser.serialize(events, value);
    const ours = (await serde.encode(events, value)).value;
    expect(ours.equals(theirs)).toBe(true);
    expect({ ...((await serde.decode(events, theirs, {})) as object) }).toEqual(value);
    expect({ ...((await de.deserialize(events, ours)) as object) }).toEqual(value);
    lib.close();
  });

  it('decodes records written with an older registered version through a resolver (defaults filled in)', async () => {
    // An older PullRequestEvent without `license`, registered first under a fresh subject, then the current one.
    const topic = `${uniq('t')}.pr.events`;
    const own = (t: string) => recordTypeOf(t.slice(t.indexOf('.') + 1));
    const v0 = JSON.parse(schemaOf('PullRequestEvent').json) as { fields: Array<{ name: string }> };
    v0.fields = v0.fields.filter((f) => f.name !== 'license');
    const v0Id = await client.register(subjectOf(topic), { schemaType: 'AVRO', schema: JSON.stringify(v0) }, false);
    const [curId] = (await registerSchemas(REGISTRY_URL, [topic], { catalog: { recordTypeOf: own } })).values();
    expect(curId).not.toBe(v0Id);
    const { license: _drop, ...old } = samplePrEvent(9);
    const body = avro.Type.forSchema(v0 as unknown as avro.Schema).toBuffer(old);
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
    framed.writeUInt32BE(v0Id, 1);
    const reader = new RegistrySerde({ url: REGISTRY_URL, catalog: { recordTypeOf: own } });
    expect({ ...((await reader.decode(topic, framed, {})) as object) }).toEqual({ ...old, license: null });
  });

  it('rejects bytes that are not Confluent-framed or do not decode (non-retriable)', async () => {
    const good = (await serde.encode(events, samplePrEvent(2))).value;
    const bad: Buffer[] = [Buffer.from([1, 0, 0, 0, 1, 2]), Buffer.from([0, 0]), Buffer.concat([good, Buffer.from([7])]), good.subarray(0, good.length - 3)];
    for (const b of bad) {
      const err = await serde.decode(events, b, {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SerdeError);
      expect((err as SerdeError).retriable).toBe(false);
    }
    const invalid = await serde.encode(events, { ...samplePrEvent(1), repo: 42 }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(SerdeError);
    expect((invalid as SerdeError).message).toContain('repo');
  });

  it('without autoRegisterSchemas, an unregistered subject is a clear non-retriable error; with it, the schema is registered', async () => {
    const topic = `${uniq('t')}.pr.events`;
    const own = (t: string) => recordTypeOf(t.slice(t.indexOf('.') + 1));
    const err = await new RegistrySerde({ url: REGISTRY_URL, catalog: { recordTypeOf: own } }).encode(topic, samplePrEvent(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerdeError);
    expect((err as SerdeError).retriable).toBe(false);
    expect((err as SerdeError).message).toContain(`${topic}-value`);
    const auto = new RegistrySerde({ url: REGISTRY_URL, catalog: { recordTypeOf: own }, autoRegisterSchemas: true });
    const bytes = (await auto.encode(topic, samplePrEvent(1))).value;
    expect(bytes.readUInt32BE(1)).toBe((await client.getLatestSchemaMetadata(subjectOf(topic))).id);
  });
});

describe('unreachable registry', () => {
  const dead = 'http://127.0.0.1:1/apis/ccompat/v7';

  it('registerSchemas fails with a retriable TransportError naming the URL', async () => {
    const err = await registerSchemas(dead, ['pr.events'], { catalog: PR }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).retriable).toBe(true);
    expect((err as TransportError).message).toContain(dead);
  });

  it('encode/decode fail with a retriable SerdeError naming the URL', async () => {
    const s = new RegistrySerde({ url: dead, catalog: prCatalog() });
    const e1 = await s.encode('pr.events', samplePrEvent(1)).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SerdeError);
    expect((e1 as SerdeError).retriable).toBe(true);
    expect((e1 as SerdeError).message).toContain(dead);
    const e2 = await s.decode('pr.events', Buffer.from([0, 0, 0, 0, 1, 0]), {}).catch((e: unknown) => e);
    expect((e2 as SerdeError).retriable).toBe(true);
    expect((e2 as SerdeError).message).toContain(dead);
  });
});
