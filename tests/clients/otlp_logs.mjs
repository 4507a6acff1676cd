// Ships the plan (JSON on stdin, see shipping.py) with the OpenTelemetry JS
// logs SDK and its OTLP/HTTP JSON exporter, at URL/v1/logs, the key as
// X-API-Key. The exporter streams its body without a Content-Length.
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { readFileSync } from 'node:fs';

const plan = JSON.parse(readFileSync(0, 'utf8'));
const SEVERITY = { debug: 5, info: 9, warn: 13, error: 17, fatal: 21 };

const exporter = new OTLPLogExporter({
  url: `${plan.url}/v1/logs`,
  headers: plan.key ? { 'X-API-Key': plan.key } : {},
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
for (const log of plan.logs) {
  logger.emit({
    timestamp: log.time_ms,
    severityNumber: SEVERITY[log.level],
    severityText: log.level.toUpperCase(),
    body: log.message,
    attributes: log.attributes ?? {},
  });
}
await provider.forceFlush();
await provider.shutdown();
const failed = results.filter((result) => result.code !== 0);
if (results.length === 0 || failed.length > 0) {
  console.error('export failed:', results.length, 'exports,', failed.map((r) => String(r.error)));
  process.exit(1);
}
