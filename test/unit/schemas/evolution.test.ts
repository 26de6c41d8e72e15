/**
 * Schema evolution (ARCHITECTURE.md §4, FULL_TRANSITIVE): for every record type, every historical version
 * in schemas/history/ and the current schema are mutually readable, and every field added since an older
 * version is nullable with default null. Also: the generated TypeScript types are in sync with the schemas,
 * and the check itself catches a deliberately incompatible change.
 */
import avro from 'avsc';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderTypes } from '../../../schemas/generate.js';
import { evolutionProblems, loadHistory } from '../../../schemas/history/index.js';
import { RECORD_TYPES, SCHEMA_DIR, schemaOf } from '../../../schemas/index.js';

/** All versions of one record type, oldest first, the current schema last (parsed standalone from its self-contained JSON). */
function versionsOf(name: (typeof RECORD_TYPES)[number]): Array<{ label: string; type: avro.Type }> {
  const history = loadHistory().get(name) ?? [];
  const current = avro.Type.forSchema(JSON.parse(schemaOf(name).json) as avro.Schema);
  return [...history.map((h) => ({ label: `v${h.version}`, type: h.type })), { label: 'current', type: current }];
}

describe('schema history', () => {
  it.each(RECORD_TYPES)('%s has at least a v1 snapshot', (name) => {
    expect(loadHistory().get(name)!.length).toBeGreaterThanOrEqual(1);
  });

  it.each(RECORD_TYPES)('%s: the newest snapshot is the current schema (snapshot a changed schema as the next version)', (name) => {
    expect(loadHistory().get(name)!.at(-1)!.fingerprint).toBe(schemaOf(name).fingerprint);
  });

  it.each(RECORD_TYPES)('%s: every pair of versions is mutually readable and follows the nullable-default rule', (name) => {
    const versions = versionsOf(name);
    for (let i = 0; i < versions.length; i++) {
      for (let j = i + 1; j < versions.length; j++) {
        const older = versions[i]!;
        const newer = versions[j]!;
        expect(evolutionProblems(older.type, newer.type, [older.label, newer.label])).toEqual([]);
        // Round trip a random value both ways through the resolvers, so readability is shown on bytes too.
        const oldValue = older.type.random();
        const readByNew = newer.type.fromBuffer(older.type.toBuffer(oldValue), newer.type.createResolver(older.type));
        expect(newer.type.isValid(readByNew)).toBe(true);
        const newValue = newer.type.random();
        const readByOld = older.type.fromBuffer(newer.type.toBuffer(newValue), older.type.createResolver(newer.type));
        expect(older.type.isValid(readByOld)).toBe(true);
      }
    }
  });
});

describe('evolution check catches incompatible changes', () => {
  const base = JSON.parse(schemaOf('PullRequestEvent').json) as { fields: Array<Record<string, unknown>> };
  const older = avro.Type.forSchema(base as unknown as avro.Schema);

  it('a new non-null field without default is rejected', () => {
    const changed = structuredClone(base);
    changed.fields.push({ name: 'reviewers_count', type: 'int' });
    const problems = evolutionProblems(older, avro.Type.forSchema(changed as unknown as avro.Schema), ['v1', 'next']);
    expect(problems.some((p) => p.includes('next cannot read data written with v1'))).toBe(true);
    expect(problems.some((p) => p.includes('PullRequestEvent.reviewers_count added in next'))).toBe(true);
  });

  it('a new non-null field WITH a default is still rejected by the house rule (Avro alone would accept it)', () => {
    const changed = structuredClone(base);
    changed.fields.push({ name: 'reviewers_count', type: 'int', default: 0 });
    const problems = evolutionProblems(older, avro.Type.forSchema(changed as unknown as avro.Schema), ['v1', 'next']);
    expect(problems).toEqual(['swestream.PullRequestEvent.reviewers_count added in next must be ["null", …] with default null']);
  });

  it('removing a required field is rejected (old readers need it)', () => {
    const changed = structuredClone(base);
    changed.fields = changed.fields.filter((f) => f.name !== 'repo');
    const problems = evolutionProblems(older, avro.Type.forSchema(changed as unknown as avro.Schema), ['v1', 'next']);
    expect(problems.some((p) => p.includes('v1 cannot read data written with next'))).toBe(true);
    expect(problems.some((p) => p.includes('.repo removed in next had no default'))).toBe(true);
  });

  it('a nested record change is checked too', () => {
    const dl = JSON.parse(schemaOf('TaskVerified').json) as avro.Schema;
    const changed = JSON.parse(schemaOf('TaskVerified').json) as { fields: Array<{ name: string; type: { fields: unknown[] } }> };
    changed.fields.find((f) => f.name === 'candidate')!.type.fields.push({ name: 'stars', type: 'long' });
    const problems = evolutionProblems(avro.Type.forSchema(dl), avro.Type.forSchema(changed as unknown as avro.Schema));
    expect(problems.some((p) => p.includes('swestream.Candidate.stars added'))).toBe(true);
  });

  it('a nullable field with default null is accepted', () => {
    const changed = structuredClone(base);
    changed.fields.push({ name: 'reviewers_count', type: ['null', 'int'], default: null });
    expect(evolutionProblems(older, avro.Type.forSchema(changed as unknown as avro.Schema))).toEqual([]);
  });
});

describe('generated types', () => {
  it('schemas/types.gen.ts equals renderTypes() (run `npm run gen:types` after a schema change)', () => {
    expect(readFileSync(join(SCHEMA_DIR, 'types.gen.ts'), 'utf8')).toBe(renderTypes());
  });
});
