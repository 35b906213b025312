#!/usr/bin/env python3
"""A minimal OTLP trace receiver: the official collector TraceService
(stubs generated from opentelemetry-proto's .proto files) on a port,
appending every span it receives to a file as a JSON line.

    otlp-receiver.py PORT SPANS_FILE   (STUBS names the generated stubs)
"""
import concurrent.futures
import json
import os
import sys
import threading

sys.path.insert(0, os.environ["STUBS"])
import grpc  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc  # noqa: E402

LOCK = threading.Lock()


def attrs(kvs):
    out = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = v.string_value or v.int_value or v.bool_value or v.double_value
    return out


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, path):
        self.path = path

    def Export(self, request, context):
        lines = []
        for rs in request.resource_spans:
            service = attrs(rs.resource.attributes).get("service.name", "")
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    lines.append(json.dumps({
                        "service": service,
                        "name": sp.name,
                        "kind": sp.kind,
                        "trace_id": sp.trace_id.hex(),
                        "span_id": sp.span_id.hex(),
                        "parent": sp.parent_span_id.hex(),
                        "links": [link.span_id.hex() for link in sp.links],
                        "start": sp.start_time_unix_nano,
                        "attributes": attrs(sp.attributes),
                    }))
        with LOCK, open(self.path, "a") as f:
            f.write("".join(line + "\n" for line in lines))
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    port, path = sys.argv[1], sys.argv[2]
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(path), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


main()
