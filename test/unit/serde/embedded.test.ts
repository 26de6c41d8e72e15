/**
 * Embedded serde: Avro binary + `swe-schema` fingerprint header; old writer schemas resolved to the current reader.
 */
import avro from 'avsc';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadHistory } from '../../../schemas/history/index.js';
import { RECORD_TYPES, schemaOf } from '../../../schemas/index.js';
import { EmbeddedSerde, SCHEMA_HEADER } from '../../../streams/serde-embedded.js';
import { SerdeError } from '../../../streams/serde.js';
import { samplePrEvent } from './sample.js';
import { prCatalog } from '../../../operators/pr/topology.js';

describe('EmbeddedSerde', () => {
  const serde = new EmbeddedSerde({ catalog: prCatalog() });

  it('round-trips a record and names its writer schema by fingerprint', async () => {
    const value = samplePrEvent(7);
    const enc = await serde.encode('pr.events', value);
    expect(enc.headers).toEqual({ [SCHEMA_HEADER]: schemaOf('PullRequestEvent').fingerprint });
    // Plain Avro binary, no framing: the bytes are exactly what avsc writes.
    expect(enc.value.equals(schemaOf('PullRequestEvent').type.toBuffer(value))).toBe(true);
    expect({ ...(await serde.decode('pr.events', enc.value, enc.headers!) as object) }).toEqual(value);
  });

  it('retry topics carry the base record type, DLQ topics DeadLetter', async () => {
    const enc = await serde.encode('pr.events.retry.filter', samplePrEvent(1));
    expect(enc.headers![SCHEMA_HEADER]).toBe(schemaOf('PullRequestEvent').fingerprint);
    expect(serde.encodeSync('pr.events.dlq', schemaOf('DeadLetter').type.random()).headers[SCHEMA_HEADER]).toBe(schemaOf('DeadLetter').fingerprint);
  });

  it('every current schema is its own latest history entry (fast path fingerprints match)', () => {
    for (const name of RECORD_TYPES) {
      const versions = loadHistory().get(name)!;
      expect(versions.at(-1)!.fingerprint).toBe(schemaOf(name).fingerprint);
    }
  });

  it('an invalid value is a non-retriable SerdeError naming the field', async () => {
    const bad = { ...samplePrEvent(1), number: 'seven' };
    const err = await serde.encode('pr.events', bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerdeError);
    expect((err as SerdeError).retriable).toBe(false);
    expect((err as SerdeError).message).toMatch(/pr\.events.*PullRequestEvent.*number/);
  });

  it('bytes that do not decode, a missing header and an unknown fingerprint are non-retriable SerdeErrors', async () => {
    const fp = schemaOf('PullRequestEvent').fingerprint;
    for (const [bytes, headers] of [
      [Buffer.from([0xff, 0xff, 0xff]), { [SCHEMA_HEADER]: fp }],
      [Buffer.concat([schemaOf('PullRequestEvent').type.toBuffer(samplePrEvent(1)), Buffer.from([1, 2])]), { [SCHEMA_HEADER]: fp }],
      [schemaOf('PullRequestEvent').type.toBuffer(samplePrEvent(1)), {}],
      [schemaOf('PullRequestEvent').type.toBuffer(samplePrEvent(1)), { [SCHEMA_HEADER]: '00'.repeat(32) }],
    ] as const) {
      const err = await serde.decode('pr.events', bytes, headers).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SerdeError);
      expect((err as SerdeError).retriable).toBe(false);
    }
  });

  it('an unknown topic is a SerdeError', async () => {
    await expect(serde.encode('no.such.topic', {})).rejects.toBeInstanceOf(SerdeError);
  });

  describe('records written with an older schema version', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swe-history-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    // A v0 of PullRequestEvent without the `license` and `labels` fields (added later, nullable/defaulted).
    const v0 = JSON.parse(schemaOf('PullRequestEvent').json) as { fields: Array<{ name: string }> };
    v0.fields = v0.fields.filter((f) => f.name !== 'license' && f.name !== 'labels');
    writeFileSync(join(dir, 'PullRequestEvent.v0.avsc'), JSON.stringify(v0));
    const oldType = avro.Type.forSchema(v0 as unknown as avro.Schema);
    const oldFp = (oldType.fingerprint('sha256') as Buffer).toString('hex');

    it('decode through a resolver to the current reader schema, defaults filled in', async () => {
      const withHistory = new EmbeddedSerde({ catalog: prCatalog(), historyDir: dir });
      const { license: _l, labels: _b, ...old } = samplePrEvent(3);
      const bytes = oldType.toBuffer(old);
      const got = (await withHistory.decode('pr.events', bytes, { [SCHEMA_HEADER]: oldFp })) as Record<string, unknown>;
      expect({ ...got }).toEqual({ ...old, license: null, labels: [] });
      // and again, from the cached resolver
      expect(((await withHistory.decode('pr.events', bytes, { [SCHEMA_HEADER]: oldFp })) as { pr_id: string }).pr_id).toBe('octo/repo#3');
    });
  });
});
