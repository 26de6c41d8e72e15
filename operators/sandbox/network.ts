/**
 * The network install sandboxes use (ARCHITECTURE.md §6: "network only during installs"; issue: a container
 * on Docker's default bridge reached a service listening on the host). Installs need the package registries
 * and DNS; they must not reach the host itself, other containers, the cloud metadata service or private
 * networks. Docker has no setting for that, so:
 *
 *  - a user-defined bridge network `swe-stream-install` on the Linux bridge `swe-inst0`, inter-container
 *    traffic off (`com.docker.network.bridge.enable_icc=false`, Docker's bridge driver options);
 *  - iptables rules in two chains of our own: SWE-STREAM-INPUT (jumped to from INPUT for packets arriving on
 *    swe-inst0) drops everything addressed to the host — any of its addresses, any port — except the proxy's
 *    port when a proxy variable names a host address; SWE-STREAM-FORWARD (jumped to from DOCKER-USER, the
 *    chain Docker documents for user rules) drops packets from swe-inst0 to link-local (169.254.0.0/16: cloud
 *    metadata), RFC 1918 and shared (100.64.0.0/10) ranges, except the host's DNS resolvers on port 53 and the
 *    proxy.
 *
 * The rules need root on the engine's host; on a remote engine (DOCKER_HOST tcp://…) or without iptables
 * the network is still created and a warning says the host is reachable ({@link InstallNetwork.isolated}
 * false), so a deployment can see what it got.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import { SandboxError } from './types.js';
import { logger } from '../../streams/log.js';

const log = logger({ component: 'sandbox-network' });

/** Name of the Docker network and of its Linux bridge. */
export const INSTALL_NETWORK = 'swe-stream-install';
export const INSTALL_BRIDGE = 'swe-inst0';
const IN_CHAIN = 'SWE-STREAM-INPUT';
const FWD_CHAIN = 'SWE-STREAM-FORWARD';
/** Destinations an install never needs (RFC 1918, RFC 6598 shared, RFC 3927 link-local). */
export const BLOCKED_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16'];

/** What {@link ensureInstallNetwork} set up. */
export interface InstallNetwork {
  name: string;
  /** true when the iptables rules are in place (host and private ranges unreachable) */
  isolated: boolean;
  /** why not, when not */
  reason?: string;
}

function iptables(args: string[]): Promise<{ code: number; err: string }> {
  return new Promise((resolve) => {
    // -w: wait for the xtables lock (dockerd and other workers edit the tables too).
    execFile('iptables', ['-w', '10', ...args], { timeout: 20_000 }, (e, _out, err) => {
      resolve({ code: e ? (typeof (e as { code?: unknown }).code === 'number' ? ((e as { code: number }).code) : 127) : 0, err: String(err) });
    });
  });
}

/** `host:port` of the proxy variables whose host is an IPv4 address (a name is resolved by the container's DNS, which is allowed). */
export function proxyEndpoints(env: NodeJS.ProcessEnv = process.env): Array<{ host: string; port: number }> {
  const out: Array<{ host: string; port: number }> = [];
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) {
    const v = env[k];
    if (!v) continue;
    try {
      const u = new URL(v.includes('://') ? v : `http://${v}`);
      if (/^\d+\.\d+\.\d+\.\d+$/.test(u.hostname)) out.push({ host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) });
    } catch {
      continue; // not a URL: nothing to allow
    }
  }
  return out.filter((p, i) => out.findIndex((q) => q.host === p.host && q.port === p.port) === i);
}

/** IPv4 nameservers of the host's resolv.conf (Docker's embedded DNS forwards container queries to them). */
async function resolvers(): Promise<string[]> {
  try {
    return [...(await readFile('/etc/resolv.conf', 'utf8')).matchAll(/^nameserver\s+(\d+\.\d+\.\d+\.\d+)/gm)].map((m) => m[1]);
  } catch {
    return [];
  }
}

/** The iptables rules of the two chains, in order (exported for the unit test of their shape). */
export function installRules(opts: { resolvers: string[]; proxies: Array<{ host: string; port: number }> }): { input: string[][]; forward: string[][] } {
  const input: string[][] = [];
  const forward: string[][] = [];
  for (const p of opts.proxies) input.push(['-p', 'tcp', '--dport', String(p.port), '-j', 'ACCEPT']);
  input.push(['-j', 'DROP']);
  for (const r of opts.resolvers) for (const proto of ['udp', 'tcp']) forward.push(['-d', r, '-p', proto, '--dport', '53', '-j', 'RETURN']);
  for (const p of opts.proxies) forward.push(['-d', p.host, '-p', 'tcp', '--dport', String(p.port), '-j', 'RETURN']);
  for (const range of BLOCKED_RANGES) forward.push(['-d', range, '-j', 'DROP']);
  forward.push(['-j', 'RETURN']);
  return { input, forward };
}

async function chain(name: string, rules: string[][], hook: { table: string; chain: string }): Promise<void> {
  await iptables(['-N', name]); // exists already: fine
  const flush = await iptables(['-F', name]);
  if (flush.code !== 0) throw new Error(`iptables -F ${name}: ${flush.err.trim()}`);
  for (const r of rules) {
    const a = await iptables(['-A', name, ...r]);
    if (a.code !== 0) throw new Error(`iptables -A ${name} ${r.join(' ')}: ${a.err.trim()}`);
  }
  const jump = ['-i', INSTALL_BRIDGE, '-j', name];
  if ((await iptables(['-C', hook.chain, ...jump])).code !== 0) {
    const i = await iptables(['-I', hook.chain, '1', ...jump]);
    if (i.code !== 0) throw new Error(`iptables -I ${hook.chain}: ${i.err.trim()}`);
  }
}

/**
 * Create the install network when missing and put the iptables rules in place (idempotent; safe to call from
 * several processes). Never throws for missing iptables rights: see the module comment.
 * @throws SandboxError (retriable) when the engine cannot create or inspect the network
 */
export async function ensureInstallNetwork(docker: Docker, opts: { local: boolean }): Promise<InstallNetwork> {
  try {
    await docker.createNetwork({
      Name: INSTALL_NETWORK,
      Driver: 'bridge',
      CheckDuplicate: true,
      Options: { 'com.docker.network.bridge.name': INSTALL_BRIDGE, 'com.docker.network.bridge.enable_icc': 'false' },
      Labels: { 'swe-stream': '1' },
    });
  } catch (e) {
    // 409: another process created it first.
    if ((e as { statusCode?: number }).statusCode !== 409) throw new SandboxError(`create network ${INSTALL_NETWORK}: ${(e as Error).message}`, true, { cause: e });
  }
  if (!opts.local) return warn('remote engine: iptables rules of its host cannot be set from here');
  if (process.getuid?.() !== 0) return warn('not root: iptables rules cannot be set');
  try {
    const rules = installRules({ resolvers: await resolvers(), proxies: proxyEndpoints() });
    await chain(IN_CHAIN, rules.input, { table: 'filter', chain: 'INPUT' });
    await chain(FWD_CHAIN, rules.forward, { table: 'filter', chain: 'DOCKER-USER' });
    return { name: INSTALL_NETWORK, isolated: true };
  } catch (e) {
    return warn((e as Error).message);
  }
}

function warn(reason: string): InstallNetwork {
  log.warn({ network: INSTALL_NETWORK, reason }, 'install sandboxes can reach the host and private networks');
  return { name: INSTALL_NETWORK, isolated: false, reason };
}
