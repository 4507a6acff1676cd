"""Ships the plan's logs with python-logging-loki (Python logging to Loki's
push API, JSON), at URL/loki/api/v1/push, the key as the Basic password.
The service is the `service_name` tag; a log's attributes are its tags."""

import logging
import warnings

import logging_loki

from shipping import emit_all, fail_loudly, read_plan

plan = read_plan()
auth = ("loki", plan["key"]) if plan.get("key") else None
version = plan.get("loki_version", "1")
with warnings.catch_warnings():
    # Version "0" (the legacy JSON form, the library's default) warns.
    warnings.simplefilter("ignore")
    handler = logging_loki.LokiHandler(
        url=plan["url"] + "/loki/api/v1/push",
        tags={"service_name": plan["service"]},
        auth=auth,
        version=version,
    )
logger = logging.getLogger("billing")
logger.propagate = False
logger.setLevel(logging.DEBUG)
logger.addHandler(fail_loudly(handler))
emit_all(logger, plan, extra_of=lambda log: {"tags": log.get("attributes", {})})
