"""Endpoints for the contract tests: a real server given on the command line, or the shared stand-in.

`pytest tests/standin --tfserving-rest=http://host:8501 --tfserving-grpc=host:8500` runs the
endpoint-only tests against any server that serves `half_plus_two` (the TF Serving quickstart model);
tests that must start their own server (bad configs, new versions, flags) use the stand-in and are
skipped when an external server is given.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.standin.metrics_support import monitoring_flag


@dataclasses.dataclass(frozen=True)
class Endpoint:
    rest_url: str
    grpc_target: str
    external: bool


@pytest.fixture(scope="session")
def endpoint(request: pytest.FixtureRequest) -> Endpoint:
    rest = request.config.getoption("--tfserving-rest")
    grpc_target = request.config.getoption("--tfserving-grpc")
    if rest or grpc_target:
        if not (rest and grpc_target):
            pytest.fail("give both --tfserving-rest and --tfserving-grpc")
        return Endpoint(rest.rstrip("/"), grpc_target, external=True)
    server = request.getfixturevalue("tfserving")
    return Endpoint(server.rest_url, server.grpc_target, external=False)


@pytest.fixture(scope="session")
def standin_only(request: pytest.FixtureRequest) -> None:
    """Skips tests that start their own stand-in when an external server is given.

    Session scope, so it is set up (and skips) before the module-scoped servers those tests use.
    """
    if request.config.getoption("--tfserving-rest"):
        pytest.skip("starts its own stand-in; not run against an external server")


@pytest.fixture(scope="session")
def bytes_server(tmp_path_factory: pytest.TempPathFactory, standin_test_models, start_session_standin):
    """A stand-in serving the test-only models (echo_bytes, warmup) with Prometheus metrics on."""
    return start_session_standin(
        {"echo_bytes": standin_test_models / "echo_bytes", "warmup": standin_test_models / "warmup"},
        flags=[monitoring_flag(tmp_path_factory.mktemp("monitoring"))],
    )
