"""Ships the plan's logs with the OpenTelemetry Python SDK: Python logging
through its LoggingHandler to the OTLP/HTTP (protobuf) log exporter, at
URL/v1/logs, the key as `Authorization: Bearer`."""

import logging

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from shipping import emit_all, read_plan

plan = read_plan()
headers = {"Authorization": f"Bearer {plan['key']}"} if plan.get("key") else {}
exporter = OTLPLogExporter(endpoint=plan["url"] + "/v1/logs", headers=headers, timeout=10)
provider = LoggerProvider(resource=Resource.create({"service.name": plan["service"]}))
provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))

# The exporter logs (never raises) a refused export: fail on it instead.
failures = []


class Failures(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            failures.append(record.getMessage())


logging.getLogger("opentelemetry").addHandler(Failures())

logger = logging.getLogger("checkout.orders")
logger.propagate = False
logger.setLevel(logging.DEBUG)
logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
emit_all(logger, plan)
provider.shutdown()
if failures:
    raise SystemExit("export failed: " + "; ".join(failures))
