"""The client for the configured transport. REST is the default; the gRPC module (and grpcio) is
imported only when configured, so a REST deployment needs neither grpcio nor protobuf."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfserving_web.model_server import ModelServerClient
from tfserving_web.model_server.rest_client import RestClient


def create_client(config: Mapping[str, Any]) -> ModelServerClient:
    """A REST or gRPC client as TFSERVING_TRANSPORT says; the gRPC module is imported only here."""
    if config["TFSERVING_TRANSPORT"] == "grpc":
        from tfserving_web.model_server.grpc_client import GrpcClient

        return GrpcClient(config["TFSERVING_GRPC_TARGET"], connect_timeout=config["CONNECT_TIMEOUT"])
    return RestClient(
        config["TFSERVING_REST_URL"],
        connect_timeout=config["CONNECT_TIMEOUT"],
        connect_retries=config["CONNECT_RETRIES"],
        version_ttl=config["MODEL_VERSION_TTL"],
    )
