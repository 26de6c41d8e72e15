/** The install network's iptables rules (operators/sandbox/network.ts): their order and what they allow. */
import { describe, expect, it } from 'vitest';
import { BLOCKED_RANGES, installRules, proxyEndpoints } from '../../../operators/sandbox/network.js';

describe('install network rules', () => {
  it('drops everything to the host but a proxy port, and private destinations but DNS and the proxy', () => {
    const r = installRules({ resolvers: ['10.255.255.53'], proxies: [{ host: '10.0.0.8', port: 3128 }] });
    expect(r.input).toEqual([['-p', 'tcp', '--dport', '3128', '-j', 'ACCEPT'], ['-j', 'DROP']]);
    // Exceptions come before the drops: iptables takes the first match.
    expect(r.forward.slice(0, 3)).toEqual([
      ['-d', '10.255.255.53', '-p', 'udp', '--dport', '53', '-j', 'RETURN'],
      ['-d', '10.255.255.53', '-p', 'tcp', '--dport', '53', '-j', 'RETURN'],
      ['-d', '10.0.0.8', '-p', 'tcp', '--dport', '3128', '-j', 'RETURN'],
    ]);
    expect(r.forward.slice(3, -1)).toEqual(BLOCKED_RANGES.map((b) => ['-d', b, '-j', 'DROP']));
    expect(r.forward.at(-1)).toEqual(['-j', 'RETURN']);
    expect(BLOCKED_RANGES).toContain('169.254.0.0/16');
  });

  it('reads proxy endpoints given as IPv4 addresses only, once each', () => {
    expect(proxyEndpoints({ HTTPS_PROXY: 'http://user:pw@10.1.2.3:8080', https_proxy: 'http://10.1.2.3:8080', HTTP_PROXY: 'proxy.corp:3128', ALL_PROXY: 'not a url ::' })).toEqual([{ host: '10.1.2.3', port: 8080 }]);
    expect(proxyEndpoints({})).toEqual([]);
  });
});
