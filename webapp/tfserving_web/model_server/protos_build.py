"""Writes (or checks) `tfserving_protos.binpb`, the FileDescriptorSet the gRPC transport loads at run time.

    python -m tfserving_web.model_server.protos_build          # rewrite the shipped file
    python -m tfserving_web.model_server.protos_build --check  # exit 1 if it differs from the installed ones

A developer command: it reads the descriptors compiled into the installed `tensorflow-serving-api`
(which imports TensorFlow, so it takes seconds), never a web host. Run it after changing the pin of
tensorflow-serving-api; the test suite runs `--check`, so a stale file fails the tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

from tfserving_web.model_server.protos import DESCRIPTOR_SET_PATH

# Modules whose messages the transport sends or reads; their imports come along.
API_MODULES = (
    "tensorflow_serving.apis.predict_pb2",
    "tensorflow_serving.apis.get_model_metadata_pb2",
    "tensorflow_serving.apis.get_model_status_pb2",
)


def _ordered_files(root: FileDescriptor, ordered: dict[str, FileDescriptor]) -> None:
    """Depth-first, dependencies before the files that import them (the order a pool accepts)."""
    for dependency in root.dependencies:
        _ordered_files(dependency, ordered)
    ordered.setdefault(root.name, root)


def descriptor_set(modules: list[ModuleType]) -> bytes:
    """The serialized FileDescriptorSet of `modules`' .proto files and everything they import."""
    ordered: dict[str, FileDescriptor] = {}
    for module in modules:
        _ordered_files(module.DESCRIPTOR, ordered)
    files = descriptor_pb2.FileDescriptorSet()
    for descriptor in ordered.values():
        descriptor.CopyToProto(files.file.add())
    return files.SerializeToString(deterministic=True)


def installed_descriptor_set() -> bytes:
    import importlib

    try:
        modules = [importlib.import_module(name) for name in API_MODULES]
    except ImportError as error:
        raise SystemExit(
            f"tfserving-protos: {error}; install tensorflow-serving-api (requirements/dev.txt) first"
        ) from None
    return descriptor_set(modules)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfserving_web.model_server.protos_build",
        description="Write the TF Serving descriptors the gRPC transport ships, from the installed "
        "tensorflow-serving-api, or check that the shipped ones are the same.",
    )
    parser.add_argument(
        "--check", action="store_true", help="compare instead of writing; exit 1 when they differ"
    )
    parser.add_argument(
        "--file",
        type=Path,
        default=DESCRIPTOR_SET_PATH,
        help="the descriptor set file (default: the one in the package)",
    )
    arguments = parser.parse_args(argv)
    fresh = installed_descriptor_set()
    if arguments.check:
        shipped = arguments.file.read_bytes() if arguments.file.is_file() else b""
        if shipped != fresh:
            print(
                f"{arguments.file} differs from the installed tensorflow-serving-api's protos; "
                "rerun `python -m tfserving_web.model_server.protos_build`",
                file=sys.stderr,
            )
            return 1
        print(f"{arguments.file} matches the installed tensorflow-serving-api")
        return 0
    arguments.file.write_bytes(fresh)
    count = len(descriptor_pb2.FileDescriptorSet.FromString(fresh).file)
    print(f"wrote {arguments.file}: {count} .proto files, {len(fresh)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
