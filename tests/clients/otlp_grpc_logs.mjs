// Ships the plan (JSON on stdin, see shipping.py) with the OpenTelemetry JS
// logs SDK and its OTLP gRPC exporter (@grpc/grpc-js underneath) at the
// plan's `grpc` address (HOST:PORT), the key as x-api-key metadata, each log
// in the span the plan gives it (its trace and span ids). This exporter
// version does not retry a refused export: a failure fails the program.
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { Metadata } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';

const plan = JSON.parse(readFileSync(0, 'utf8'));
const SEVERITY = { debug: 5, info: 9, warn: 13, error: 17, fatal: 21 };

const metadata = new Metadata();
if (plan.key) metadata.set('x-api-key', plan.key);
const exporter = new OTLPLogExporter({
  url: `http://${plan.grpc}`,
  metadata,
  compression: plan.gzip ? 'gzip' : 'none',
  timeoutMillis: 10000,
});
// Count what the exporter reports instead of trusting silence.
const results = [];
const export_ = exporter.export.bind(exporter);
exporter.export = (logs, done) => export_(logs, (result) => { results.push(result); done(result); });

const provider = new LoggerProvider({
  resource: resourceFromAttributes({ 'service.name': plan.service }),
  // One export of every log, on the flush below.
  processors: [new BatchLogRecordProcessor({ exporter, scheduledDelayMillis: 60000 })],
});
const logger = provider.getLogger('checkout.web', '2.1.0');
plan.logs.forEach((log, index) => {
  const span = plan.spans[index];
  const context = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: span.trace_id,
    spanId: span.span_id,
    traceFlags: TraceFlags.SAMPLED,
  });
  logger.emit({
    timestamp: log.time_ms,
    severityNumber: SEVERITY[log.level],
    severityText: log.level.toUpperCase(),
    body: log.message,
    attributes: log.attributes ?? {},
    context,
  });
});
await provider.forceFlush();
await provider.shutdown();
const failed = results.filter((result) => result.code !== 0);
if (results.length === 0 || failed.length > 0) {
  console.error('export failed:', results.length, 'exports,', failed.map((r) => String(r.error)));
  process.exit(1);
}
