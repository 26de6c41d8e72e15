/**
 * Configuration: file (JSON) < environment < flags, validated by one zod schema. A bad value is a
 * {@link ConfigError} naming the field; the CLI prints it and exits with code 2 before anything starts.
 *
 * Environment variables (all optional): SWE_STREAM_BUS, SWE_STREAM_DATA_DIR, SWE_STREAM_KAFKA_BROKERS
 * (comma-separated), SWE_STREAM_KAFKA_PREFIX (prefix of topics, groups and stores), SWE_STREAM_REGISTRY_URL, SWE_STREAM_CLICKHOUSE_URL, SWE_STREAM_METRICS_PORT,
 * SWE_STREAM_PARTITIONS, SWE_STREAM_REGISTRY_AUTO_REGISTER=1 (register schemas at start: development and tests),
 * SWE_STREAM_OFFLINE=1 (no remote clones), SWE_STREAM_LOCAL_REPOS (directories whose
 * repositories may be cloned by path, separated like PATH; for workers of git: sources run elsewhere), SWE_STREAM_LICENSES (`permissive`, `any`, or SPDX ids
 * separated by commas: the filter's licence rule), DOCKER_HOST (read by the sandbox), GITHUB_TOKEN, SWE_STREAM_WEBHOOK_SECRET.
 * Secrets are read from the environment only, never from the config file.
 */
import { readFileSync } from 'node:fs';
import { delimiter } from 'node:path';
import { z } from 'zod';
import { llmConfigSchema } from '../operators/llm/config.js';
import { STAGE_NAMES } from '../operators/pr/topology.js';
import { TOPIC_PREFIX } from '../streams/transports/prefixed.js';
import { SANDBOX_DEFAULTS } from '../operators/sandbox/types.js';
import { FILTER_DEFAULTS } from '../operators/filter.js';
import { DEFAULT_MAX_ATTEMPTS } from '../streams/runtime.js';
import { DEFAULT_BROKERS, DEFAULT_REGISTRY_URL } from '../streams/endpoints.js';

const stageEnum = z.enum(STAGE_NAMES);

const GiB = 1024 ** 3;
/** What one record of a stage is expected to hold while it runs: cores and bytes. */
const costSchema = z.object({ cpus: z.number().positive(), memoryBytes: z.number().int().positive() }).strict();

/**
 * Admission of env-build and verify work by free machine resources (streams/admission.ts): a record starts when
 * its cost fits what the gate has left and the machine really has idle CPU and available memory. `cpus` and
 * `memoryBytes` default to the machine's cores and 80% of its memory.
 */
const admissionSchema = z
  .object({
    enabled: z.boolean().default(true),
    cpus: z.number().positive().optional(),
    memoryBytes: z.number().int().positive().optional(),
    cost: z
      .object({
        'env-build': costSchema.default({ cpus: 1, memoryBytes: 2 * GiB }),
        verify: costSchema.default({ cpus: 1, memoryBytes: 1 * GiB }),
      })
      .strict()
      .default({}),
  })
  .strict()
  .default({});

/** Per-stage concurrency (records processed at once by one process). */
const concurrencySchema = z
  .object({
    filter: z.number().int().positive().default(4),
    // env-build and verify: upper bounds; the admission gate starts work by free CPU and memory (`admission`).
    'env-build': z.number().int().positive().default(2),
    'test-create': z.number().int().positive().default(2),
    verify: z.number().int().positive().default(3),
    statement: z.number().int().positive().default(4),
    distill: z.number().int().positive().default(1),
  })
  .strict()
  .default({});

export const configSchema = z
  .object({
    /** Where the embedded log, mirrors, chDB data and caches live. */
    dataDir: z.string().min(1).default('.swe-stream'),
    bus: z.enum(['embedded', 'kafka']).default('embedded'),
    kafka: z
      .object({
        brokers: z.array(z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port')).min(1).default([...DEFAULT_BROKERS]),
        clientId: z.string().default('swe-stream'),
        replicationFactor: z.number().int().positive().default(1),
        /**
         * Prefix of every topic, consumer group and store on the brokers (streams/transports/prefixed.ts), so
         * several pipelines share one cluster without touching each other's records or offsets. Default none.
         */
        topicPrefix: z.string().regex(TOPIC_PREFIX, `expected ${TOPIC_PREFIX.source}`).optional(),
      })
      .strict()
      .default({}),
    /** Partitions per topic when topics are created. */
    partitions: z.number().int().positive().max(1024).default(3),
    registry: z
      .object({
        url: z.string().url().default(DEFAULT_REGISTRY_URL),
        /**
         * Register the current schemas at startup: development and tests only (SWE_STREAM_REGISTRY_AUTO_REGISTER=1).
         * In production they are registered once by the deploy step, `swe-stream schemas register`.
         */
        autoRegister: z.boolean().default(false),
      })
      .strict()
      .default({}),
    clickhouse: z
      .object({
        /** ClickHouse server HTTP URL; absent → embedded chDB under dataDir. */
        url: z.string().url().optional(),
        database: z.string().default('swe_stream'),
      })
      .strict()
      .default({}),
    mirrors: z
      .object({
        /** false: no remote repository is cloned; they end as `repo-unavailable` (offline runs, tests). */
        network: z.boolean().default(true),
        /**
         * Directories whose repositories may be cloned by local path. `run` adds the paths its `git:` sources
         * name; a clone_url of any other event that points into the file system is `repo-unavailable`.
         */
        localPaths: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .default({}),
    sources: z.array(z.string().min(1)).default([]),
    stages: z.array(stageEnum).default([...STAGE_NAMES]),
    concurrency: concurrencySchema,
    admission: admissionSchema,
    /** Attempts per record before the dead-letter topic. */
    maxAttempts: z.number().int().min(1).max(20).default(DEFAULT_MAX_ATTEMPTS),
    filter: z
      .object({
        maxFiles: z.number().int().positive().default(FILTER_DEFAULTS.maxFiles),
        maxChangedLines: z.number().int().positive().default(FILTER_DEFAULTS.maxChangedLines),
        /** bound of the diff a candidate carries downstream, bytes of UTF-8 (larger → too-large) */
        maxDiffBytes: z.number().int().positive().max(786_432).default(FILTER_DEFAULTS.maxDiffBytes),
        languages: z.array(z.string()).default([...FILTER_DEFAULTS.languages]),
        /**
         * The licence rule: `permissive` (default), `any` (SWE-bench itself includes GPL/LGPL projects), or a
         * list of SPDX ids such as `["MIT", "Apache-2.0", "GPL-3.0", "LGPL-2.1"]` (operators/pr/classify.ts).
         */
        licenses: z
          .union([z.enum(['permissive', 'any']), z.array(z.string().regex(/^[A-Za-z0-9.+-]+$/, 'expected an SPDX licence id')).min(1)])
          .default(FILTER_DEFAULTS.licenses),
      })
      .strict()
      .default({}),
    /** Limits of every sandbox (operators/sandbox owns the defaults). Bytes; timeouts in ms, per install command and per test run. */
    sandbox: z
      .object({
        memoryBytes: z.number().int().positive().default(SANDBOX_DEFAULTS.memoryBytes),
        cpus: z.number().positive().default(SANDBOX_DEFAULTS.cpus),
        pidsLimit: z.number().int().positive().default(SANDBOX_DEFAULTS.pidsLimit),
        installTimeoutMs: z.number().int().positive().default(SANDBOX_DEFAULTS.installTimeoutMs),
        testTimeoutMs: z.number().int().positive().default(SANDBOX_DEFAULTS.testTimeoutMs),
      })
      .strict()
      .default({}),
    llm: llmConfigSchema.optional(),
    metricsPort: z.number().int().min(0).max(65535).optional(),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** A configuration mistake: message names the field and the file/variable it came from. */
export class ConfigError extends Error {
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const num = (name: string) => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new ConfigError(`${name}=${v} is not a number`);
    return n;
  };
  if (env.SWE_STREAM_BUS) out.bus = env.SWE_STREAM_BUS;
  const mirrors: Record<string, unknown> = {};
  if (env.SWE_STREAM_OFFLINE === '1') mirrors.network = false;
  if (env.SWE_STREAM_LOCAL_REPOS) mirrors.localPaths = env.SWE_STREAM_LOCAL_REPOS.split(delimiter).filter(Boolean);
  if (Object.keys(mirrors).length) out.mirrors = mirrors;
  if (env.SWE_STREAM_DATA_DIR) out.dataDir = env.SWE_STREAM_DATA_DIR;
  if (env.SWE_STREAM_LICENSES) {
    const v = env.SWE_STREAM_LICENSES.trim();
    out.filter = { licenses: v === 'any' || v === 'permissive' ? v : v.split(',').map((x) => x.trim()).filter(Boolean) };
  }
  const kafka: Record<string, unknown> = {};
  if (env.SWE_STREAM_KAFKA_BROKERS) kafka.brokers = env.SWE_STREAM_KAFKA_BROKERS.split(',').map((s) => s.trim()).filter(Boolean);
  if (env.SWE_STREAM_KAFKA_PREFIX) kafka.topicPrefix = env.SWE_STREAM_KAFKA_PREFIX;
  if (Object.keys(kafka).length) out.kafka = kafka;
  const registry: Record<string, unknown> = {};
  if (env.SWE_STREAM_REGISTRY_URL) registry.url = env.SWE_STREAM_REGISTRY_URL;
  const auto = env.SWE_STREAM_REGISTRY_AUTO_REGISTER;
  if (auto !== undefined && auto !== '') {
    if (auto !== '1' && auto !== '0') throw new ConfigError(`SWE_STREAM_REGISTRY_AUTO_REGISTER=${auto}: expected 1 or 0`);
    registry.autoRegister = auto === '1';
  }
  if (Object.keys(registry).length) out.registry = registry;
  if (env.SWE_STREAM_CLICKHOUSE_URL) out.clickhouse = { url: env.SWE_STREAM_CLICKHOUSE_URL };
  const mp = num('SWE_STREAM_METRICS_PORT');
  if (mp !== undefined) out.metricsPort = mp;
  const parts = num('SWE_STREAM_PARTITIONS');
  if (parts !== undefined) out.partitions = parts;
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge of plain objects; arrays and scalars of `b` replace those of `a`; undefined in `b` keeps `a`. */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    out[k] = isObject(v) && isObject(out[k]) ? merge(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

/**
 * Resolve the configuration from a JSON file, the environment and flag overrides (in rising precedence).
 * @throws ConfigError for an unreadable file, invalid JSON, or any value the schema refuses.
 */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {}): Config {
  let fileCfg: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${opts.file}: ${(e as Error).message}`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (!isObject(parsed)) throw new Error('top level must be an object');
      fileCfg = parsed;
    } catch (e) {
      throw new ConfigError(`config file ${opts.file} is not valid JSON: ${(e as Error).message}`);
    }
  }
  const merged = merge(merge(fileCfg, fromEnv(opts.env ?? process.env)), opts.overrides ?? {});
  const r = configSchema.safeParse(merged);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
    throw new ConfigError(`invalid configuration${opts.file ? ` (file ${opts.file}, environment, flags)` : ''}:\n${issues}`);
  }
  return r.data;
}
