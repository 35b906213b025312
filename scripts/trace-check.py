#!/usr/bin/env python3
"""Checks, from the spans an OTLP receiver got, that one REST join is one
trace across every hop: the BFF, the join service, the relay's publish,
and the feed's and mail's consumers, each correctly parented, with the
join batch's span linked to it. Database calls are spans inside the
traces of the requests that made them, and no span name carries an id.

    trace-check.py SPANS_FILE
"""
import json
import re
import sys
import time
from collections import defaultdict


def load(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def ancestors(span, by_id):
    """The chain of parents of `span` found in its trace."""
    chain = []
    while span["parent"] and span["parent"] in by_id:
        span = by_id[span["parent"]]
        chain.append(span)
    return chain


def complete(spans):
    """A trace holding the whole path of one join, or why none does."""
    traces = defaultdict(list)
    for s in spans:
        traces[s["trace_id"]].append(s)
    links = {link for s in spans if s["name"] == "join.settle" for link in s["links"]}
    best = "no trace has a join.confirmed publish"
    for trace_id, trace in traces.items():
        by_id = {s["span_id"]: s for s in trace}
        publishes = [s for s in trace if s["name"] == "nats.publish" and "join.confirmed" in str(s["attributes"].get("subject", ""))]
        for pub in publishes:
            chain = ancestors(pub, by_id)
            services = {s["service"] for s in chain}
            if not {"bff", "join"} <= services:
                best = f"trace {trace_id}: the publish's parents reach {sorted(services)}, not the BFF and join"
                continue
            consumers = {s["service"] for s in trace if s["name"] == "nats.consume" and s["parent"] == pub["span_id"]}
            if not {"feed", "mail"} <= consumers:
                best = f"trace {trace_id}: consumers under the publish: {sorted(consumers)}"
                continue
            joined = [s for s in chain if s["service"] == "join"]
            if not any(s["span_id"] in links for s in joined):
                best = f"trace {trace_id}: no join.settle span links to the join's span"
                continue
            return trace_id, trace, chain
    return None, best, None


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def main():
    path = sys.argv[1]
    deadline = time.time() + 30
    while True:
        trace_id, trace, chain = complete(load(path))
        if trace_id or time.time() > deadline:
            break
        time.sleep(1)
    if not trace_id:
        print(f"no complete trace of a REST join: {trace}")
        sys.exit(1)
    named = [s["name"] for s in load(path) if UUID.search(s["name"])]
    if named:
        print(f"span names carry ids (name by route, not path): {named[:3]}")
        sys.exit(1)
    spans = load(path)
    by_id = {s["span_id"]: s for s in spans}
    db = [s for s in spans if s["name"].startswith("db.") and s["attributes"].get("db.system") == "postgresql"]
    inside = [s for s in db if s["parent"] in by_id and by_id[s["parent"]]["trace_id"] == s["trace_id"]]
    if not inside:
        print(f"no database span inside a request's trace ({len(db)} database spans in all)")
        sys.exit(1)
    hops = " -> ".join(f"{s['service']}:{s['name']}" for s in reversed(chain))
    services = sorted({s["service"] for s in trace})
    print(f"trace {trace_id}: {len(trace)} spans from {', '.join(services)}; "
          f"{hops} -> nats.publish -> feed and mail nats.consume; "
          f"{len(inside)} database spans inside requests' traces, e.g. {inside[0]['service']}:{inside[0]['name']}")


main()
