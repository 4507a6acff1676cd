"""What the Python client programs share: the test's plan, read as JSON from
stdin, and Python logging records made from it.

The plan: {"url": "http://127.0.0.1:PORT", "service": "...", "key": "..." or
null, "logs": [{"message": "...", "level": "debug|info|warn|error|fatal",
"time_ms": 1735732800123, "attributes": {"k": "v"}}]}
"""

import contextlib
import json
import logging
import sys

# Our five levels as Python's logging levels.
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}


def read_plan():
    return json.load(sys.stdin)


def emit_all(
    logger,
    plan,
    extra_of=lambda log: log.get("attributes", {}),
    around=lambda index: contextlib.nullcontext(),
):
    """Logs every planned log through `logger`'s handlers, with the planned
    time as the record's creation time (what handlers send as its time),
    each inside `around(index)` (a span, say)."""
    for index, log in enumerate(plan["logs"]):
        record = logger.makeRecord(
            logger.name,
            LEVELS[log["level"]],
            __file__,
            0,
            log["message"],
            (),
            None,
            extra=extra_of(log),
        )
        record.created = log["time_ms"] / 1000
        with around(index):
            logger.handle(record)


def fail_loudly(handler):
    """logging swallows a handler's errors (prints them, goes on); a test
    client must fail instead."""

    def handle_error(record):
        raise sys.exc_info()[1]

    handler.handleError = handle_error
    return handler
