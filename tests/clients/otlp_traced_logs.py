"""Logs inside real spans: the OpenTelemetry Python SDK's TracerProvider makes
two traces of nested spans (start_as_current_span: a request, a payment
inside it, a card-network call inside that) crossing two services, and
Python logging inside those spans goes through the SDK's LoggingHandler to
the OTLP/HTTP (protobuf) log exporter at URL/v1/logs. The SDK, not the test,
makes the ids and stamps each log with the trace and span current when it
was logged; one log outside every span has none.

The plan (stdin): {"url": "http://127.0.0.1:PORT", "key": "..." or null,
"run": "a marker put in every message"}.

Prints what the SDK made, as JSON: [{"message", "service", "trace_id",
"span_id"}], the ids as the SDK formats them (lowercase hex), null outside a
span."""

import json
import logging

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_span_id, format_trace_id

from shipping import read_plan

plan = read_plan()
run = plan["run"]
headers = {"Authorization": f"Bearer {plan['key']}"} if plan.get("key") else {}

# The exporter logs (never raises) a refused export: fail on it instead.
failures = []


class Failures(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            failures.append(record.getMessage())


logging.getLogger("opentelemetry").addHandler(Failures())

# Spans are made, not exported: this server takes logs, and the ids are
# what matter. Each service logs through a provider of its own resource.
tracer = TracerProvider(resource=Resource.create({"service.name": "traced-frontend"})).get_tracer(
    "checkout.frontend"
)
providers = []


def service_logger(service):
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPLogExporter(endpoint=plan["url"] + "/v1/logs", headers=headers, timeout=10)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    providers.append(provider)
    logger = logging.getLogger(service)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    return logger


frontend = service_logger("traced-frontend")
payments = service_logger("traced-payments")
made = []


def log(logger, level, text):
    """Logs `text` (marked with the run) and notes the ids of the span
    current now, as the SDK will stamp them."""
    context = trace.get_current_span().get_span_context()
    message = f"{run} {text}"
    logger.log(level, message)
    made.append(
        {
            "message": message,
            "service": logger.name,
            "trace_id": format_trace_id(context.trace_id) if context.is_valid else None,
            "span_id": format_span_id(context.span_id) if context.is_valid else None,
        }
    )


for order in ("A-17", "B-42"):
    with tracer.start_as_current_span(f"POST /checkout {order}"):
        log(frontend, logging.INFO, f"{order}: checkout started")
        with tracer.start_as_current_span("authorize payment"):
            log(payments, logging.INFO, f"{order}: authorizing the card")
            with tracer.start_as_current_span("call card network"):
                log(payments, logging.WARNING, f"{order}: card network slow")
            log(payments, logging.ERROR, f"{order}: card declined, retrying")
        log(frontend, logging.INFO, f"{order}: checkout answered")
log(frontend, logging.INFO, "after every span")

for provider in providers:
    provider.shutdown()
if failures:
    raise SystemExit("export failed: " + "; ".join(failures))
print(json.dumps(made))
