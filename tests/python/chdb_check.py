"""Runs SQL the Rust code wrote out in chdb (the current ClickHouse engine,
in-process) and prints the answers as JSON. Used by the integration test
`split::modern_clickhouse`, which compares them with ClickHouse 18.16's.

Input (a JSON file named by argv[1]):
  {"setup": [sql, ...], "queries": {name: sql, ...}, "explain": {name: sql, ...}}
Output (stdout): {"version": "...", "results": {name: [[cell, ...], ...]},
                  "explain": {name: text}}
Cells are strings, whatever their type, so 64-bit integers stay exact.
"""

import json
import sys
import tempfile

from chdb import session


def rows(result):
    text = result.bytes().decode("utf-8")
    if not text.strip():
        return []
    return [[str(cell) for cell in row] for row in json.loads(text)["data"]]


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    with tempfile.TemporaryDirectory() as directory:
        db = session.Session(directory)
        version = rows(db.query("SELECT version()", "JSONCompact"))[0][0]
        for statement in spec["setup"]:
            db.query(statement)
        results = {
            name: rows(db.query(statement, "JSONCompact"))
            for name, statement in spec["queries"].items()
        }
        explain = {
            name: db.query("EXPLAIN indexes = 1 " + statement, "TSVRaw").bytes().decode("utf-8")
            for name, statement in spec.get("explain", {}).items()
        }
        db.close()
    json.dump({"version": version, "results": results, "explain": explain}, sys.stdout)


if __name__ == "__main__":
    main()
