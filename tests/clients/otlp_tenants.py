"""Sends ONE OTLP export holding several resources, each naming its own
tenant in a resource attribute, with the OpenTelemetry Python SDK: one
LoggerProvider per resource (Python logging through its LoggingHandler),
their records gathered and handed together to the real OTLP log exporter
(HTTP/protobuf, or gRPC), which groups them into one ResourceLogs each.

The plan: {"transport": "http"|"grpc", "url": "http://HOST:PORT",
"grpc": "HOST:PORT", "key": "..." or null, "tenant": "..." or null (sent as
X-Scope-OrgID), "resources": [{"attributes": {"service.name": "...",
"tenant.id": "..."}, "messages": ["..."]}]}

Prints {"result": "SUCCESS"|"FAILURE", "status": HTTP status or gRPC code
name, "rejected": N, "error_message": "..."}: the SDK does not act on
OTLP's partial success, so the answer is read where the exporter gets it
(the HTTP exporter's requests session; the gRPC exporter's stub)."""

import json
import logging
import sys

import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

plan = json.load(sys.stdin)
answer = {"status": None, "rejected": 0, "error_message": ""}


def partial_success(response):
    answer["rejected"] = response.partial_success.rejected_log_records
    answer["error_message"] = response.partial_success.error_message


class RecordingSession(requests.Session):
    """The HTTP exporter's session: keeps the last answer."""

    def request(self, *args, **kwargs):
        response = super().request(*args, **kwargs)
        answer["status"] = response.status_code
        if response.ok:
            message = ExportLogsServiceResponse()
            message.ParseFromString(response.content)
            partial_success(message)
        else:
            answer["error_message"] = response.text
        return response


headers = {}
if plan.get("key"):
    headers["authorization"] = f"Bearer {plan['key']}"
if plan.get("tenant"):
    headers["x-scope-orgid"] = plan["tenant"]

if plan["transport"] == "http":
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(
        endpoint=plan["url"] + "/v1/logs", headers=headers, timeout=10, session=RecordingSession()
    )
else:
    from grpc import RpcError
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(
        endpoint=f"http://{plan['grpc']}", insecure=True, headers=list(headers.items()), timeout=10
    )
    stub = exporter._client  # the generated LogsService stub

    class RecordingStub:
        def Export(self, *args, **kwargs):
            try:
                response = stub.Export(*args, **kwargs)
            except RpcError as error:
                answer["status"] = error.code().name
                answer["error_message"] = error.details()
                raise
            answer["status"] = "OK"
            partial_success(response)
            return response

    exporter._client = RecordingStub()

records = []
for index, resource in enumerate(plan["resources"]):
    memory = InMemoryLogExporter()
    provider = LoggerProvider(resource=Resource.create(resource["attributes"]))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = logging.getLogger(f"tenants.resource{index}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
    for message in resource["messages"]:
        logger.info(message)
    provider.force_flush()
    records.extend(memory.get_finished_logs())

result = exporter.export(records)
exporter.shutdown()
answer["result"] = result.name
print(json.dumps(answer))
