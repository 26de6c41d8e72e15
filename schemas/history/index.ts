/**
 * Historical versions of the top-level schemas, and the evolution rule they must obey.
 *
 * Every version a writer may ever have used lives here as a self-contained schema file
 * `<RecordType>.v<N>.avsc` (named types inlined, exactly the JSON registered with a schema registry).
 * The embedded serde (streams/serde-embedded.ts) finds a record's writer schema by fingerprint among
 * these and the current schemas; the evolution test (test/unit/schemas/evolution.test.ts) proves every
 * pair of versions mutually readable.
 *
 * Changing a schema: snapshot the new current self-contained JSON (`schemaOf(name).json`) as the next `vN`
 * file here in the same change (the evolution test fails while the newest snapshot differs from the current
 * schema), so every version any writer used stays decodable. Steps: schemas/history/README.md.
 *
 * Rule (FULL_TRANSITIVE, ARCHITECTURE.md §4): every version can read data written by every other version.
 * We enforce the stricter house rule that makes that true by construction: a field added since an older
 * version is a union whose first branch is "null" with default null; a field removed since an older version
 * had a default there. Source: Avro 1.11 specification, "Schema Resolution"; Confluent Schema Registry
 * docs, "Compatibility types" (FULL_TRANSITIVE = backward and forward against all previous versions).
 */
import avro from 'avsc';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RECORD_TYPES, type RecordTypeName } from '../index.js';

export const HISTORY_DIR = dirname(fileURLToPath(import.meta.url));

/** One historical schema version. */
export interface HistoricalSchema {
  name: RecordTypeName;
  /** Version number N from the file name `<name>.v<N>.avsc`. */
  version: number;
  type: avro.Type;
  /** Self-contained schema JSON as stored in the file (re-serialised compactly). */
  json: string;
  /** SHA-256 of the Avro parsing canonical form, hex (same function as schemas/index.ts). */
  fingerprint: string;
}

const FILE_RE = /^([A-Za-z]+)\.v(\d+)\.avsc$/;

let cache: Map<RecordTypeName, HistoricalSchema[]> | undefined;

/**
 * Load every historical version, per record type, oldest first. Cached per process.
 * @throws Error when a file is not valid Avro or names an unknown record type
 */
export function loadHistory(dir = HISTORY_DIR): Map<RecordTypeName, HistoricalSchema[]> {
  if (dir === HISTORY_DIR && cache) return cache;
  const out = new Map<RecordTypeName, HistoricalSchema[]>(RECORD_TYPES.map((n) => [n, []]));
  for (const file of readdirSync(dir)) {
    const m = FILE_RE.exec(file);
    if (!m) continue;
    const name = m[1] as RecordTypeName;
    const list = out.get(name);
    if (!list) throw new Error(`schemas/history/${file}: unknown record type ${name}`);
    const schema = JSON.parse(readFileSync(join(dir, file), 'utf8')) as avro.Schema;
    // A fresh registry per file: versions share type names, and each file is self-contained.
    const type = avro.Type.forSchema(schema);
    list.push({ name, version: Number(m[2]), type, json: JSON.stringify(schema), fingerprint: fingerprintOf(type) });
  }
  for (const list of out.values()) list.sort((a, b) => a.version - b.version);
  if (dir === HISTORY_DIR) cache = out;
  return out;
}

/** SHA-256 of a type's parsing canonical form, hex. */
export function fingerprintOf(type: avro.Type): string {
  return (type.fingerprint('sha256') as Buffer).toString('hex');
}

/** Every named record type reachable from `type`, by full name. */
function recordsOf(type: avro.Type, out = new Map<string, avro.types.RecordType>()): Map<string, avro.types.RecordType> {
  if (type instanceof avro.types.RecordType) {
    if (out.has(type.name!)) return out;
    out.set(type.name!, type);
    for (const f of type.fields) recordsOf(f.type, out);
  } else if (type instanceof avro.types.ArrayType) {
    recordsOf(type.itemsType, out);
  } else if (type instanceof avro.types.MapType) {
    recordsOf(type.valuesType, out);
  } else if (type instanceof avro.types.UnwrappedUnionType || type instanceof avro.types.WrappedUnionType) {
    for (const t of type.types) recordsOf(t, out);
  }
  return out;
}

/** A field type that the house rule accepts for an added field: ["null", …] with default null. */
function isNullableWithNullDefault(field: avro.types.Field): boolean {
  const t = field.type;
  const isUnion = t instanceof avro.types.UnwrappedUnionType || t instanceof avro.types.WrappedUnionType;
  return isUnion && t.types[0]?.typeName === 'null' && field.defaultValue() === null;
}

/**
 * Problems that make `older` and `newer` not mutually readable or break the house rule; empty when fine.
 * Checks, in order: newer reads older (backward), older reads newer (forward), then per named record
 * present in both: fields added in `newer` are nullable with default null, fields dropped from `older`
 * had a default. Labels name the versions in messages (e.g. "v1", "current").
 */
export function evolutionProblems(older: avro.Type, newer: avro.Type, labels: [string, string] = ['older', 'newer']): string[] {
  const [lo, ln] = labels;
  const problems: string[] = [];
  try {
    newer.createResolver(older);
  } catch (err) {
    problems.push(`${ln} cannot read data written with ${lo}: ${(err as Error).message}`);
  }
  try {
    older.createResolver(newer);
  } catch (err) {
    problems.push(`${lo} cannot read data written with ${ln}: ${(err as Error).message}`);
  }
  const olderRecords = recordsOf(older);
  for (const [name, rec] of recordsOf(newer)) {
    const prev = olderRecords.get(name);
    if (!prev) continue; // a new named type is only reachable through a new (checked) field
    const prevFields = new Map(prev.fields.map((f) => [f.name, f]));
    const nowFields = new Set(rec.fields.map((f) => f.name));
    for (const f of rec.fields) {
      if (!prevFields.has(f.name) && !isNullableWithNullDefault(f)) {
        problems.push(`${name}.${f.name} added in ${ln} must be ["null", …] with default null`);
      }
    }
    for (const f of prev.fields) {
      if (!nowFields.has(f.name) && f.defaultValue() === undefined) {
        problems.push(`${name}.${f.name} removed in ${ln} had no default in ${lo}`);
      }
    }
  }
  return problems;
}
