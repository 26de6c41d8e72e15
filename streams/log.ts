/**
 * Structured logging (pino): JSON lines when stdout is not a terminal, one readable line per event
 * when it is. Secrets never reach a log: any field whose name looks like a credential is redacted,
 * and {@link redact} scrubs token-shaped substrings from free text (error messages, command output).
 */
import pino from 'pino';

const SECRET_KEYS = ['token', 'apiKey', 'api_key', 'authorization', 'password', 'secret', '*.token', '*.apiKey', '*.authorization', '*.password', '*.secret', 'headers.authorization'];

/** Token shapes: GitHub (ghp_, gho_, github_pat_), OpenAI-style sk-…, Bearer headers. */
const TOKEN_RE = /\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{16,}|Bearer\s+[A-Za-z0-9._~+/-]{16,}=*)/g;

/** Replace token-shaped substrings with `[redacted]`. */
export function redact(text: string): string {
  return text.replace(TOKEN_RE, '[redacted]');
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
      // Scrub free-text messages too: a token can hide inside an error message or a command line.
      method.apply(this, args.map((a) => (typeof a === 'string' ? redact(a) : a)) as Parameters<typeof method>);
    },
  },
}, process.stdout.isTTY ? pino.destination({ dest: 2, sync: true }) : pino.destination({ dest: 2, sync: false }));

/** A child logger for one component (`{ component: 'runtime', stage: 'verify' }`). */
export function logger(bindings: Record<string, string>): pino.Logger {
  return log.child(bindings);
}
