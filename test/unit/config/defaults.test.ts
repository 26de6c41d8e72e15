import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../cli/config.js';
import { SANDBOX_DEFAULTS } from '../../../operators/sandbox/types.js';
import { FILTER_DEFAULTS } from '../../../operators/filter.js';
import { DEFAULT_MAX_ATTEMPTS } from '../../../streams/runtime.js';
import { DEFAULT_BROKERS, DEFAULT_REGISTRY_URL } from '../../../streams/endpoints.js';
import { defaultBrokers } from '../../../streams/transports/kafka.js';
import { defaultRegistryUrl } from '../../../streams/serde-registry.js';

describe('configuration defaults come from the parts they configure', () => {
  const cfg = loadConfig({ env: {} });

  it('sandbox limits and timeouts are SANDBOX_DEFAULTS', () => {
    const { diskBytes: _notConfigured, ...configured } = SANDBOX_DEFAULTS;
    expect(cfg.sandbox).toEqual(configured);
  });

  it('filter settings are FILTER_DEFAULTS, maxAttempts the runtime default', () => {
    expect(cfg.filter).toEqual({ ...FILTER_DEFAULTS, languages: [...FILTER_DEFAULTS.languages] });
    expect(cfg.maxAttempts).toBe(DEFAULT_MAX_ATTEMPTS);
  });

  it('schemas are not registered at start unless asked (a deploy registers them)', () => {
    expect(cfg.registry.autoRegister).toBe(false);
    expect(loadConfig({ env: { SWE_STREAM_REGISTRY_AUTO_REGISTER: '1' } }).registry.autoRegister).toBe(true);
    expect(loadConfig({ env: { SWE_STREAM_REGISTRY_AUTO_REGISTER: '0' } }).registry.autoRegister).toBe(false);
    expect(loadConfig({ env: { SWE_STREAM_REGISTRY_AUTO_REGISTER: '1', SWE_STREAM_REGISTRY_URL: 'http://r:1/x' } }).registry).toEqual({ url: 'http://r:1/x', autoRegister: true });
    expect(() => loadConfig({ env: { SWE_STREAM_REGISTRY_AUTO_REGISTER: 'yes' } })).toThrow(ConfigError);
  });

  it('Kafka brokers and the registry URL default to the endpoints the clients use', () => {
    expect(cfg.kafka.brokers).toEqual(DEFAULT_BROKERS);
    expect(cfg.registry.url).toBe(DEFAULT_REGISTRY_URL);
    const saved = { b: process.env.SWE_STREAM_KAFKA_BROKERS, r: process.env.SWE_STREAM_REGISTRY_URL };
    delete process.env.SWE_STREAM_KAFKA_BROKERS;
    delete process.env.SWE_STREAM_REGISTRY_URL;
    try {
      expect(defaultBrokers()).toEqual(DEFAULT_BROKERS);
      expect(defaultRegistryUrl()).toBe(DEFAULT_REGISTRY_URL);
    } finally {
      if (saved.b !== undefined) process.env.SWE_STREAM_KAFKA_BROKERS = saved.b;
      if (saved.r !== undefined) process.env.SWE_STREAM_REGISTRY_URL = saved.r;
    }
  });
});
