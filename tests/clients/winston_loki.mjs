// Ships the plan (JSON on stdin, see shipping.py) with winston and
// winston-loki, which sends snappy-compressed protobuf when the `snappy`
// package loads (and JSON otherwise: this program refuses that fallback).
// The key is the Basic password; the service is the `service_name` label, a
// log's attributes are its labels.
import winston from 'winston';
import LokiTransport from 'winston-loki';
import { readFileSync } from 'node:fs';

const plan = JSON.parse(readFileSync(0, 'utf8'));
const errors = [];
const transport = new LokiTransport({
  host: plan.url,
  basicAuth: plan.key ? `winston:${plan.key}` : undefined,
  labels: { service_name: plan.service },
  format: winston.format.printf((info) => info.message),
  replaceTimestamp: false,
  // One batch, sent by close() below as one request of several streams.
  batching: true,
  interval: 600,
  gracefulShutdown: false,
  timeout: 10000,
  onConnectionError: (error) => errors.push(String(error)),
});
if (transport.batcher.contentType !== 'application/x-protobuf') {
  console.error('winston-loki fell back to JSON: the snappy package did not load');
  process.exit(1);
}
const logger = winston.createLogger({
  levels: { fatal: 0, error: 1, warn: 2, info: 3, debug: 4 },
  level: 'debug',
  transports: [transport],
});
const handedOver = new Promise((resolve) => {
  let logged = 0;
  transport.on('logged', () => {
    logged += 1;
    if (logged === plan.logs.length) resolve();
  });
});
for (const log of plan.logs) {
  logger.log({
    level: log.level,
    message: log.message,
    timestamp: new Date(log.time_ms).toISOString(),
    labels: log.attributes ?? {},
  });
}
// Every log reached the transport's batch; close() sends it and waits.
await handedOver;
await transport.close();
if (errors.length > 0) {
  console.error('push failed:', errors);
  process.exit(1);
}
