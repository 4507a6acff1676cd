"""Ships the plan with the OpenTelemetry Python SDK's OTLP gRPC log exporter
(opentelemetry-exporter-otlp-proto-grpc): Python logging through its
LoggingHandler, each log inside the span the plan gives it (its trace and
span ids), gzip-compressed, at the plan's `grpc` address (HOST:PORT), the key
as `authorization: Bearer` (or, with "key_form": "x-api-key", as x-api-key).

Prints {"exports": N, "retries": N}: the exporter's own retries (a full
pipeline answers RESOURCE_EXHAUSTED with a retry delay) count, a failed
export fails the program."""

import json
import logging

from grpc import Compression
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, use_span

from shipping import emit_all, read_plan

plan = read_plan()
headers = {}
if plan.get("key"):
    if plan.get("key_form") == "x-api-key":
        headers = {"x-api-key": plan["key"]}
    else:
        headers = {"authorization": f"Bearer {plan['key']}"}
exporter = OTLPLogExporter(
    endpoint=f"http://{plan['grpc']}",
    insecure=True,
    headers=headers,
    compression=Compression.Gzip,
    timeout=plan.get("timeout_s", 20),
)

# Count what the exporter reports instead of trusting silence.
results = []
export = exporter.export


def counted_export(batch):
    result = export(batch)
    results.append(result)
    return result


exporter.export = counted_export
provider = LoggerProvider(resource=Resource.create({"service.name": plan["service"]}))
# One export of every log, on the flush below.
provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=60000))

# The exporter logs (never raises): a retry is a warning "Transient error …",
# anything else at WARNING or above is a failure.
retries = []
failures = []


class Watch(logging.Handler):
    def emit(self, record):
        if record.levelno < logging.WARNING:
            return
        message = record.getMessage()
        (retries if message.startswith("Transient error") else failures).append(message)


logging.getLogger("opentelemetry").addHandler(Watch())

spans = plan["spans"]


def in_span(index):
    context = SpanContext(
        trace_id=int(spans[index]["trace_id"], 16),
        span_id=int(spans[index]["span_id"], 16),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return use_span(NonRecordingSpan(context), end_on_exit=False)


logger = logging.getLogger("checkout.orders")
logger.propagate = False
logger.setLevel(logging.DEBUG)
logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
emit_all(logger, plan, around=in_span)
provider.force_flush()
provider.shutdown()
# The result enum was renamed across SDK versions; its member's name was not.
if failures or not results or any(r.name != "SUCCESS" for r in results):
    raise SystemExit(f"export failed: {results} {failures}")
print(json.dumps({"exports": len(results), "retries": len(retries)}))
