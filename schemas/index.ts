/**
 * Avro schemas of every record type, loaded from the `.avsc` files beside this module.
 *
 * Shared named types live in `parts/` and are referenced by full name (`swestream.Candidate`) from the
 * top-level schemas; {@link loadSchemas} resolves them through one avsc registry and exports each
 * top-level schema self-contained (named types inlined at first use), which is what a schema registry
 * subject needs. Rule source: Avro 1.11 specification, "Names" and "Schema Resolution".
 */
import avro from 'avsc';
import './avro-strings.js'; // faster string writes for every avsc type, same bytes
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SCHEMA_DIR = dirname(fileURLToPath(import.meta.url));

/** Names of the top-level record types, one per topic family (ARCHITECTURE.md §1). */
export const RECORD_TYPES = [
  'PullRequestEvent',
  'PrCandidate',
  'EnvironmentReady',
  'TestsReady',
  'TaskVerified',
  'TaskStated',
  'Trajectory',
  'StageOutcome',
  'DeadLetter',
] as const;
export type RecordTypeName = (typeof RECORD_TYPES)[number];

/** Parts in dependency order: a part may only reference parts listed before it. */
const PARTS = ['Provenance', 'LinkedIssue', 'ChangedFile', 'PatchSize', 'Candidate', 'Environment', 'TestSpec', 'Verification', 'Statement'];

/** One loaded schema: the avsc type, its self-contained JSON text and a fingerprint (sha256 of canonical form, hex). */
export interface LoadedSchema {
  name: RecordTypeName;
  type: avro.Type;
  /** Self-contained schema JSON (named types inlined), as registered with a schema registry. */
  json: string;
  /** SHA-256 of the Avro parsing canonical form, hex. Identifies the schema on the embedded transport. */
  fingerprint: string;
}

let cache: Map<RecordTypeName, LoadedSchema> | undefined;

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/**
 * Parse one top-level schema text (possibly from another version) with the shared parts resolved.
 * @param schema parsed `.avsc` JSON
 * @param partsDir folder of the parts to resolve named references against (default: current parts)
 * @throws Error from avsc when the schema is invalid or references an unknown name
 */
export function parseSchema(schema: unknown, partsDir = join(SCHEMA_DIR, 'parts')): avro.Type {
  const registry: Record<string, avro.Type> = {};
  const available = new Set(readdirSync(partsDir).map((f) => f.replace(/\.avsc$/, '')));
  for (const part of PARTS) {
    if (available.has(part)) avro.Type.forSchema(readJson(join(partsDir, `${part}.avsc`)) as avro.Schema, { registry });
  }
  return avro.Type.forSchema(schema as avro.Schema, { registry });
}

/** Load every top-level schema. Cached per process. @throws Error when a file is missing or invalid. */
export function loadSchemas(): Map<RecordTypeName, LoadedSchema> {
  if (cache) return cache;
  const out = new Map<RecordTypeName, LoadedSchema>();
  for (const name of RECORD_TYPES) {
    const type = parseSchema(readJson(join(SCHEMA_DIR, `${name}.avsc`)));
    const json = JSON.stringify(type.schema({ exportAttrs: true }));
    const fingerprint = (type.fingerprint('sha256') as Buffer).toString('hex');
    out.set(name, { name, type, json, fingerprint });
  }
  cache = out;
  return out;
}

/** The schema of one record type. @throws Error for an unknown name. */
export function schemaOf(name: RecordTypeName): LoadedSchema {
  const s = loadSchemas().get(name);
  if (!s) throw new Error(`unknown record type ${name}`);
  return s;
}
