/**
 * `swe-stream doctor [--json]`: checks every part a run needs — git, the Docker engine, the offline base
 * images, the bus (embedded log or Kafka), the schema registry (Kafka), ClickHouse (chDB or server), the LLM
 * endpoints — and prints how to fix what is missing. Exit code 1 when a required part fails.
 */
import type { Command } from 'commander';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { accessSync, constants, mkdirSync } from 'node:fs';
import Docker from 'dockerode';
import { commonOptions, configFrom, type CommonFlags } from '../common.js';
import type { Config } from '../config.js';
import { openBus } from '../bus.js';
import { openClickHouse } from '../../connectors/sinks/connection.js';
import { AGENT_NAMES } from '../../operators/llm/config.js';
import { resolveAgentConfig } from '../../operators/llm/config.js';
import { splitUrlCredentials } from '../../operators/pr/git-exec.js';
import { redact } from '../../streams/log.js';

const exec = promisify(execFile);

/** One line of the doctor's report. */
export interface Check {
  part: string;
  status: 'ok' | 'missing' | 'fail' | 'off';
  detail: string;
  fix?: string;
  required: boolean;
}

async function check(part: string, required: boolean, fix: string, fn: () => Promise<string>): Promise<Check> {
  try {
    return { part, status: 'ok', detail: redact(await fn()), required };
  } catch (e) {
    // Service URLs may carry a password (http://user:pw@host): the report never shows it.
    return { part, status: 'fail', detail: redact((e as Error).message.split('\n')[0]!).slice(0, 200), fix, required };
  }
}

/** Run every check for a configuration. Never throws. */
export async function doctor(cfg: Config): Promise<Check[]> {
  const out: Check[] = [];
  out.push(await check('git', true, 'apt-get install -y git', async () => (await exec('git', ['--version'])).stdout.trim()));
  const docker = new Docker();
  out.push(
    await check('docker engine', true, 'bash infra/docker.sh start (or set DOCKER_HOST to a remote engine)', async () => {
      const v = await docker.version();
      return `Docker ${v.Version} at ${process.env.DOCKER_HOST ?? '/var/run/docker.sock'}`;
    }),
  );
  out.push(
    await check('base images', false, 'built automatically on first use (debootstrap + docker import, ~2 min each)', async () => {
      const imgs = await docker.listImages({ filters: { reference: ['swe-stream/base-*'] } });
      const tags = imgs.flatMap((i) => i.RepoTags ?? []);
      if (tags.length === 0) throw new Error('no swe-stream/base-* image yet');
      return tags.join(', ');
    }),
  );
  out.push(
    await check(cfg.bus === 'kafka' ? 'bus: kafka' : 'bus: embedded log', true, cfg.bus === 'kafka' ? 'bash infra/kafka.sh start' : `make ${cfg.dataDir} writable`, async () => {
      if (cfg.bus === 'embedded') {
        mkdirSync(cfg.dataDir, { recursive: true });
        accessSync(cfg.dataDir, constants.W_OK);
      }
      const bus = await openBus(cfg);
      const groups = await bus.transport.listGroups();
      await bus.transport.close();
      return cfg.bus === 'kafka' ? `brokers ${cfg.kafka.brokers.join(',')}, ${groups.length} groups` : `${cfg.dataDir}/log.db, ${groups.length} groups`;
    }),
  );
  if (cfg.bus === 'kafka') {
    out.push(
      await check('schema registry', true, 'bash infra/registry.sh start', async () => {
        // fetch refuses URLs with userinfo: send it as HTTP Basic (RFC 7617), as registry clients do.
        const { url, username, password } = splitUrlCredentials(cfg.registry.url);
        const headers: Record<string, string> = username !== undefined || password !== undefined ? { authorization: `Basic ${Buffer.from(`${username ?? ''}:${password ?? ''}`).toString('base64')}` } : {};
        const r = await fetch(`${url.replace(/\/$/, '')}/subjects`, { headers, signal: AbortSignal.timeout(10_000) });
        if (!r.ok) throw new Error(`${url} answered ${r.status}`);
        return `${url}, ${((await r.json()) as unknown[]).length} subjects`;
      }),
    );
  }
  out.push(
    await check(cfg.clickhouse.url ? 'clickhouse server' : 'clickhouse (chDB)', true, cfg.clickhouse.url ? 'bash infra/clickhouse.sh start' : 'npm ci (installs chdb)', async () => {
      const ch = await openClickHouse({ url: cfg.clickhouse.url, dataDir: cfg.dataDir, database: cfg.clickhouse.database }, { applyDdl: false });
      try {
        return `${cfg.clickhouse.url ?? `${cfg.dataDir}/chdb`} (ClickHouse ${ch.version})`;
      } finally {
        await ch.close();
      }
    }),
  );
  for (const agent of AGENT_NAMES) {
    let ac;
    try {
      ac = resolveAgentConfig(cfg.llm, agent);
    } catch (e) {
      out.push({ part: `llm: ${agent}`, status: 'fail', detail: (e as Error).message.slice(0, 200), fix: 'fix the llm section of the config', required: false });
      continue;
    }
    if (!ac) {
      out.push({ part: `llm: ${agent}`, status: 'off', detail: 'not configured: rule-based path', required: false });
      continue;
    }
    out.push(
      await check(`llm: ${agent}`, false, `check ${ac.baseURL} and ${ac.apiKeyEnv}`, async () => {
        const r = await fetch(`${ac.baseURL.replace(/\/$/, '')}/models`, { headers: { authorization: `Bearer ${process.env[ac.apiKeyEnv] ?? 'none'}` }, signal: AbortSignal.timeout(5000) });
        return `${ac.model} at ${ac.baseURL} (GET /models → ${r.status})`;
      }),
    );
  }
  return out;
}

export function registerDoctor(program: Command): void {
  commonOptions(program.command('doctor').description('check every part a run needs and say how to fix what is missing').option('--json', 'print JSON')).action(
    async (flags: CommonFlags & { json?: boolean }) => {
      const cfg = configFrom(flags);
      const checks = await doctor(cfg);
      if (flags.json) process.stdout.write(JSON.stringify(checks) + '\n');
      else
        for (const c of checks)
          process.stdout.write(`${c.status.padEnd(7)} ${c.part.padEnd(26)} ${c.detail}${c.status === 'fail' && c.fix ? `\n        fix: ${c.fix}` : ''}\n`);
      if (checks.some((c) => c.required && c.status !== 'ok')) process.exitCode = 1;
    },
  );
}
