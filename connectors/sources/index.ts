/**
 * Opening a source from its URI (the schemes of ARCHITECTURE.md §1):
 *  - `gharchive:<file|url|glob|range>`         → ./gharchive.ts
 *  - `github:<owner>/<repo>[?prs=…&poll=…&base=…]` → ./github.ts (token: opts.githubToken, else GITHUB_TOKEN)
 *  - `webhook:<host>:<port>`                    → ./webhook.ts (secret: opts.webhookSecret, else SWE_STREAM_WEBHOOK_SECRET, else GITHUB_WEBHOOK_SECRET)
 *  - `git:<path|url>[?prs=…&since=…&limit=…&repo=…&poll=…]` → ./git.ts
 */
import type { Source, SourceOptions } from './types.js';
import { GhArchiveSource } from './gharchive.js';
import { GitHubSource } from './github.js';
import { WebhookSource } from './webhook.js';
import { GitSource } from './git.js';

export type { Source, SourceItem, SourceOptions } from './types.js';
export { GhArchiveSource } from './gharchive.js';
export { GitHubSource } from './github.js';
export { WebhookSource, verifySignature, signBody } from './webhook.js';
export { GitSource } from './git.js';

/**
 * Open the source a URI names.
 * @throws Error (with the URI and what is expected) for an unknown scheme, a malformed URI, or a webhook
 *   source without a secret.
 */
export function openSource(uri: string, opts: SourceOptions & { gharchiveBase?: string }): Source {
  const cloneHosts = cloneHostsFrom(process.env.SWE_STREAM_CLONE_HOSTS);
  const i = uri.indexOf(':');
  if (i <= 0) throw new Error(`source ${JSON.stringify(uri)}: expected <scheme>:<target>, scheme one of gharchive, github, webhook, git`);
  const scheme = uri.slice(0, i);
  const rest = uri.slice(i + 1);
  if (!rest) throw new Error(`source ${JSON.stringify(uri)}: empty target`);
  switch (scheme) {
    case 'gharchive':
      return new GhArchiveSource(uri, rest, { base: opts.gharchiveBase, cloneHosts });
    case 'github': {
      const q = rest.indexOf('?');
      const repo = q === -1 ? rest : rest.slice(0, q);
      const params = new URLSearchParams(q === -1 ? '' : rest.slice(q + 1));
      const prs = params.get('prs')?.split(',').filter(Boolean).map(Number);
      if (prs?.some((n) => !Number.isSafeInteger(n) || n <= 0)) throw new Error(`source ${uri}: bad prs=`);
      const poll = params.get('poll');
      for (const k of params.keys()) if (!['prs', 'poll', 'base'].includes(k)) throw new Error(`source ${uri}: unknown parameter ${k}`);
      return new GitHubSource(uri, repo, {
        token: opts.githubToken ?? process.env.GITHUB_TOKEN,
        baseUrl: params.get('base') ?? process.env.GITHUB_API_URL ?? undefined,
        prs,
        pollSeconds: poll ? Number(poll) : undefined,
      });
    }
    case 'webhook': {
      const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(rest);
      if (!m || Number(m[2]) > 65535) throw new Error(`source ${uri}: expected webhook:<host>:<port>`);
      const secret = opts.webhookSecret ?? process.env.SWE_STREAM_WEBHOOK_SECRET ?? process.env.GITHUB_WEBHOOK_SECRET;
      if (!secret) throw new Error(`source ${uri}: a webhook secret is required (SWE_STREAM_WEBHOOK_SECRET)`);
      return new WebhookSource(uri, { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), secret, cloneHosts });
    }
    case 'git':
      return new GitSource(uri, rest, opts.mirrors);
    default:
      throw new Error(`source ${JSON.stringify(uri)}: unknown scheme ${JSON.stringify(scheme)} (gharchive, github, webhook, git)`);
  }
}

/**
 * Hosts an event's clone URL may name (`SWE_STREAM_CLONE_HOSTS`, comma-separated, e.g. a GitHub Enterprise
 * host); github.com always. Unset: github.com only (see normalize.ts trustedCloneUrl).
 * @throws Error for an entry that is not a bare host name (a URL, a path, a port)
 */
export function cloneHostsFrom(value: string | undefined): string[] | undefined {
  if (!value?.trim()) return undefined;
  const hosts = value.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  for (const h of hosts) if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(h)) throw new Error(`SWE_STREAM_CLONE_HOSTS: ${JSON.stringify(h)} is not a host name`);
  return [...new Set(['github.com', ...hosts])];
}
