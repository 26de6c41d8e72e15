/**
 * Opens the bus a command asked for: the embedded log (`<dataDir>/log.db`, schemas from files) or Kafka
 * with the schema registry. Errors name what was tried (file path, brokers, registry URL).
 */
import { join } from 'node:path';
import { mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync, closeSync } from 'node:fs';
import type { Transport } from '../streams/transport.js';
import type { Serde } from '../streams/serde.js';
import { EmbeddedTransport } from '../streams/transports/embedded.js';
import { EmbeddedSerde } from '../streams/serde-embedded.js';
import type { Config } from './config.js';
import { prCatalog } from '../operators/pr/topology.js';

export interface Bus {
  transport: Transport;
  serde: Serde;
}

/**
 * Claim the data directory for this process: the embedded log has one member per consumer group, so two
 * `run`/`worker` processes on one data dir would process every record twice. A lock left by a crashed
 * process (its pid is gone) is taken over.
 * @throws Error naming the pid that holds the directory
 */
export function lockDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'run.lock');
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      process.once('exit', () => {
        try {
          if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone: nothing to release
        }
      });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8'));
      let alive = false;
      try {
        alive = pid > 0 && process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`data directory ${dataDir} is in use by process ${pid} (another swe-stream run or worker); stop it or use another --data-dir`);
      unlinkSync(path); // stale: its process is gone
    }
  }
}

/**
 * @throws TransportError when the log cannot be opened or the brokers do not answer; SerdeError/TransportError
 * when the registry does not answer.
 */
export async function openBus(cfg: Config, opts: { exclusive?: boolean } = {}): Promise<Bus> {
  if (cfg.bus === 'embedded') {
    if (opts.exclusive) lockDataDir(cfg.dataDir);
    return { transport: new EmbeddedTransport({ path: join(cfg.dataDir, 'log.db') }), serde: new EmbeddedSerde({ catalog: prCatalog() }) };
  }
  const { openKafkaBus } = await import('./bus-kafka.js');
  return openKafkaBus(cfg);
}
