import { describe, it, expect } from 'vitest';
import { licenseAllowed } from '../../../operators/pr/classify.js';
import { loadConfig, ConfigError } from '../../../cli/config.js';

describe('the licence rule as a setting', () => {
  it('permissive (default) rejects copyleft, any lets every known licence through, unknown is never rejected', () => {
    expect(licenseAllowed('MIT')).toBe(true);
    expect(licenseAllowed('GPL-3.0')).toBe(false);
    expect(licenseAllowed('LGPL-2.1', 'permissive')).toBe(false);
    expect(licenseAllowed('GPL-3.0', 'any')).toBe(true);
    expect(licenseAllowed('AGPL-3.0', 'any')).toBe(true);
    for (const p of ['permissive', 'any', ['MIT']] as const) {
      expect(licenseAllowed(null, p)).toBeNull();
      expect(licenseAllowed('NOASSERTION', p)).toBeNull();
      expect(licenseAllowed('other', p)).toBeNull();
    }
  });

  it('a list of SPDX ids: case-insensitive, -only/-or-later match the bare id, OR needs one, AND needs all', () => {
    const list = ['MIT', 'gpl-3.0', 'LGPL-2.1'];
    expect(licenseAllowed('GPL-3.0', list)).toBe(true);
    expect(licenseAllowed('GPL-3.0-only', list)).toBe(true);
    expect(licenseAllowed('LGPL-2.1-or-later', list)).toBe(true);
    expect(licenseAllowed('AGPL-3.0', list)).toBe(false);
    expect(licenseAllowed('Apache-2.0', list)).toBe(false);
    expect(licenseAllowed('(Apache-2.0 OR MIT)', list)).toBe(true);
    expect(licenseAllowed('MIT AND AGPL-3.0', list)).toBe(false);
    expect(licenseAllowed('MIT AND GPL-3.0', list)).toBe(true);
  });

  it('config: filter.licenses from the file or SWE_STREAM_LICENSES, validated', () => {
    expect(loadConfig({ env: {} }).filter.licenses).toBe('permissive');
    expect(loadConfig({ env: { SWE_STREAM_LICENSES: 'any' } }).filter.licenses).toBe('any');
    expect(loadConfig({ env: { SWE_STREAM_LICENSES: 'MIT, GPL-3.0' } }).filter.licenses).toEqual(['MIT', 'GPL-3.0']);
    expect(loadConfig({ env: {}, overrides: { filter: { licenses: ['BSD-3-Clause'] } } }).filter.licenses).toEqual(['BSD-3-Clause']);
    expect(() => loadConfig({ env: {}, overrides: { filter: { licenses: 'copyleft' } } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: {}, overrides: { filter: { licenses: ['MIT; rm -rf'] } } })).toThrow(/filter\.licenses/);
  });
});
