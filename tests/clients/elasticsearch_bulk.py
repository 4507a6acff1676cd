"""Ships the plan's logs with the official Elasticsearch client: `info()`
(GET /), then `helpers.bulk` of one document per log into the index
`plan["index"]`, the key as `Authorization: ApiKey`. Documents carry
`@timestamp`, `message`, `log.level` and `service.name` as ECS nests them,
plus the log's attributes (a dotted name is nested, as ECS writes it)."""

import datetime
import json
import sys

from elasticsearch import Elasticsearch, helpers

from shipping import read_plan

plan = read_plan()
client = Elasticsearch(plan["url"], api_key=plan.get("key"), request_timeout=10, max_retries=0)
info = client.info()
assert info["version"]["number"].startswith("8."), info


def nested(attributes):
    document = {}
    for key, value in attributes.items():
        *parents, leaf = key.split(".")
        place = document
        for parent in parents:
            place = place.setdefault(parent, {})
        place[leaf] = value
    return document


def actions():
    for log in plan["logs"]:
        instant = datetime.datetime.fromtimestamp(log["time_ms"] / 1000, datetime.timezone.utc)
        document = nested(log.get("attributes", {}))
        document.update(
            {
                "@timestamp": instant.isoformat(timespec="milliseconds"),
                "message": log["message"],
                "log": {"level": log["level"]},
                "service": {"name": plan["service"]},
            }
        )
        yield {"_index": plan["index"], "_source": document}


stored, errors = helpers.bulk(client, actions())
json.dump({"stored": stored, "errors": errors}, sys.stdout)
