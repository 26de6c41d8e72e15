/**
 * Helpers for the Kafka transport tests. They talk to the real broker (SWE_STREAM_KAFKA_BROKERS, default
 * 127.0.0.1:9092) and the real registry (SWE_STREAM_REGISTRY_URL, default Apicurio's ccompat API on 8081),
 * both started by infra/ — never mocks.
 */
import { randomUUID } from 'node:crypto';

export const BROKERS = (process.env.SWE_STREAM_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
export const REGISTRY_URL = process.env.SWE_STREAM_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';

/** A name no other test run uses (topics and groups outlive a test run on a shared broker). */
export function uniq(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * Wait until `cond()` is true, checking on every timer turn (no fixed sleeps: returns as soon as it holds).
 * @throws Error naming `what` after `timeoutMs`
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
