/**
 * `swe-stream schemas register`: the deploy step that registers the current Avro schema of every topic
 * with the schema registry (compatibility FULL_TRANSITIVE). Workers on the Kafka bus only look the schemas
 * up (`registry.autoRegister` is false unless set), so a deploy runs this once before starting them; an
 * incompatible schema is refused here, before any worker writes with it.
 */
import type { Command } from 'commander';
import { registerSchemas } from '../../streams/serde-registry.js';
import { allTopics, prCatalog } from '../../operators/pr/topology.js';
import { commonOptions, configFrom, type CommonFlags } from '../common.js';

/** Register `schemas register` on the program. */
export function registerSchemasCommand(program: Command): void {
  const schemas = program.command('schemas').description('Avro schemas in the schema registry');
  commonOptions(
    schemas.command('register').description('register the current schema of every topic (the deploy step before Kafka workers start); prints subject ids as JSON'),
  ).action(async (flags: CommonFlags) => {
    const cfg = configFrom(flags);
    // Throws a TransportError naming the (redacted) URL when the registry is unreachable or refuses a schema: exit 1.
    const ids = await registerSchemas(cfg.registry.url, allTopics(), { catalog: prCatalog() });
    process.stdout.write(JSON.stringify(Object.fromEntries(ids)) + '\n');
  });
}
