import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../cli/config.js';
import { SANDBOX_DEFAULTS } from '../../../operators/sandbox/types.js';
import { FILTER_DEFAULTS } from '../../../operators/filter.js';
import { DEFAULT_MAX_ATTEMPTS } from '../../../streams/runtime.js';

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
});
