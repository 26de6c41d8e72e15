// Kafka readiness as a client sees it: an open port is not enough (the broker accepts
// connections before the KRaft controller has elected itself and registered the broker),
// so poll admin.describeCluster() until it lists a broker, or give up at the deadline.
// Usage: node infra/wait-kafka.mjs [brokers=127.0.0.1:9092] [seconds=60]
import { Kafka, logLevel } from 'kafkajs';

const brokers = (process.argv[2] ?? process.env.SWE_STREAM_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const deadline = Date.now() + Number(process.argv[3] ?? 60) * 1000;
// Our own loop does the retrying; kafkajs' built-in retries would only hide the deadline.
const kafka = new Kafka({ clientId: 'swe-stream-wait', brokers, logLevel: logLevel.NOTHING,
  connectionTimeout: 1000, requestTimeout: 2000, retry: { retries: 0 } });

let lastError = 'no attempt';
while (Date.now() < deadline) {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const { brokers: found, controller } = await admin.describeCluster();
    if (found.length > 0 && controller !== null && controller !== -1) {
      console.log(`kafka ready: ${found.map((b) => `${b.host}:${b.port}`).join(',')} controller=${controller}`);
      process.exit(0);
    }
    lastError = 'no broker or controller yet';
  } catch (err) {
    lastError = err?.message ?? String(err);
  } finally {
    await admin.disconnect().catch(() => {});
  }
  await new Promise((r) => setTimeout(r, 500));
}
console.error(`kafka not ready at ${brokers.join(',')}: ${lastError}`);
process.exit(1);
