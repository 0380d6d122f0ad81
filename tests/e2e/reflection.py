"""Lists a gRPC server's services the way Python clients do: grpcio-reflection over
grpc.reflection.v1alpha. Prints a JSON object {"services": [...], "methods": {service: n}} after
resolving every listed service's descriptor (its file and imports) through reflection.

Usage: python3 reflection.py HOST:PORT
"""

import json
import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> int:
    channel = grpc.insecure_channel(sys.argv[1])
    grpc.channel_ready_future(channel).result(timeout=10)
    db = ProtoReflectionDescriptorDatabase(channel)
    services = sorted(db.get_services())
    pool = DescriptorPool(db)
    methods = {name: len(pool.FindServiceByName(name).methods) for name in services}
    print(json.dumps({"services": services, "methods": methods}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
