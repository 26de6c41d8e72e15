/**
 * Structured logging (pino): JSON lines when stdout is not a terminal, one readable line per event
 * when it is. Secrets never reach a log: any field whose name looks like a credential is redacted,
 * {@link redact} scrubs URL userinfo and token-shaped substrings from free text (error messages, command
 * output, URLs), and every string inside a logged object goes through it too.
 */
import pino from 'pino';

const SECRET_KEYS = ['token', 'apiKey', 'api_key', 'authorization', 'password', 'secret', '*.token', '*.apiKey', '*.authorization', '*.password', '*.secret', 'headers.authorization'];

/**
 * Token shapes: GitHub (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_; github.com/github/docs "About authentication
 * to GitHub": token prefixes), OpenAI-style sk-…, GitLab glpat-…, Authorization Bearer/Basic/token values.
 */
const TOKEN_RE = /\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{16,}|glpat-[A-Za-z0-9_-]{16,}|(?:Bearer|Basic|token)\s+[A-Za-z0-9._~+/-]{16,}=*)/g;

/**
 * userinfo of a URL (RFC 3986 §3.2.1: `scheme://user[:password]@host`): kept out of everything printed,
 * as `scheme://***@host`. The userinfo may not contain `/`, `@` or whitespace.
 */
const USERINFO_RE = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi;

/** Replace URL userinfo with `***` and token-shaped substrings with `[redacted]`. Idempotent. */
export function redact(text: string): string {
  return text.replace(USERINFO_RE, '$1***@').replace(TOKEN_RE, '[redacted]');
}

/**
 * {@link redact} over every string of a JSON-like value (objects, arrays; depth ≤ 8, beyond which values are
 * kept as they are). Errors become `{name, message, stack}` with redacted text. Returns a new value.
 */
export function redactValue<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return redact(value) as T;
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (value instanceof Error) return { name: value.name, message: redact(value.message), stack: value.stack ? redact(value.stack) : undefined } as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1)) as T;
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, depth + 1);
  return out as T;
}

/** The process logger. Level from SWE_STREAM_LOG_LEVEL (default info; tests default to warn). */
export const log = pino({
  level: process.env.SWE_STREAM_LOG_LEVEL ?? (process.env.VITEST ? 'warn' : 'info'),
  redact: { paths: SECRET_KEYS, censor: '[redacted]' },
  base: undefined,
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
  hooks: {
    logMethod(args, method) {
      // Scrub messages and fields: a token can hide inside an error message, a command line or a source URI.
      method.apply(this, args.map((a) => redactValue(a)) as Parameters<typeof method>);
    },
  },
}, process.stdout.isTTY ? pino.destination({ dest: 2, sync: true }) : pino.destination({ dest: 2, sync: false }));

/** A child logger for one component (`{ component: 'runtime', stage: 'verify' }`). */
export function logger(bindings: Record<string, string>): pino.Logger {
  return log.child(redactValue(bindings));
}
