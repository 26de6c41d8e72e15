/**
 * Opens the bus a command asked for: the embedded log (`<dataDir>/log.db`, schemas from files) or Kafka
 * with the schema registry. Errors name what was tried (file path, brokers, registry URL).
 */
import { join } from 'node:path';
import type { Transport } from '../streams/transport.js';
import type { Serde } from '../streams/serde.js';
import { EmbeddedTransport } from '../streams/transports/embedded.js';
import { EmbeddedSerde } from '../streams/serde-embedded.js';
import type { Config } from '../streams/config.js';

export interface Bus {
  transport: Transport;
  serde: Serde;
}

/**
 * @throws TransportError when the log cannot be opened or the brokers do not answer; SerdeError/TransportError
 * when the registry does not answer.
 */
export async function openBus(cfg: Config): Promise<Bus> {
  if (cfg.bus === 'embedded') {
    return { transport: new EmbeddedTransport({ path: join(cfg.dataDir, 'log.db') }), serde: new EmbeddedSerde() };
  }
  const { openKafkaBus } = await import('./bus-kafka.js');
  return openKafkaBus(cfg);
}
