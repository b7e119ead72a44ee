"""Continuous, bounded client load that counts every failure: REST, gRPC and the web front end.

Each client thread sends one request at a time until stopped, or until its request or time budget is
spent, and records every answer that is not a success (status, or exception). The load only goes to
the addresses a test gives it: loopback or the project's own boxes.
"""

from __future__ import annotations

import collections
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
import requests
from google.protobuf import json_format
from PIL import Image

MAX_REQUESTS_PER_CLIENT = 20000
MAX_SECONDS = 900.0
# A steady load, not a flood: the boxes share 2 cores with the playbook being tested, and on a
# 2-core machine every core the load takes makes that playbook, and so the load, last longer. Measured on
# the fleet (six clients through HAProxy for 30 s, the machine's busy time): a pause of 20 ms sent 5,600-5,900
# requests and kept 1.3 cores busy, 50 ms sent 3,000 and kept 0.77 busy. Each kind of request still goes
# out about every 30 ms (two clients per kind), so a failure lasting longer than that is still met.
PAUSE_SECONDS = 0.05


@dataclass
class LoadReport:
    """What the clients saw, per kind of request."""

    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    failed: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, failure: str | None) -> None:
        with self.lock:
            self.sent[kind] += 1
            if failure is not None:
                self.failed[kind] += 1
                if len(self.failures) < 20:
                    self.failures.append(f"{kind}: {failure}")

    def summary(self) -> str:
        kinds = sorted(self.sent)
        return ", ".join(f"{kind} {self.sent[kind]} sent / {self.failed[kind]} failed" for kind in kinds)


def digit_png() -> bytes:
    """A small dark-on-light PNG, the kind of image the web page and the digits model take."""
    image = Image.new("L", (28, 28), 255)
    for y in range(6, 22):
        image.putpixel((14, y), 0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def rest_predict(rest_url: str, model: str = "half_plus_two") -> Callable[[requests.Session], str | None]:
    def call(session: requests.Session) -> str | None:
        answer = session.post(
            f"{rest_url}/v1/models/{model}:predict", json={"instances": [1.0, 2.0, 5.0]}, timeout=10
        )
        if answer.status_code != 200:
            return f"HTTP {answer.status_code} {answer.text[:120]}"
        return (
            None
            if answer.json().get("predictions") == [2.5, 3.0, 4.5]
            else f"wrong answer {answer.text[:120]}"
        )

    return call


def web_predict(web_url: str) -> Callable[[requests.Session], str | None]:
    files = {"image": ("digit.png", digit_png(), "image/png")}

    def call(session: requests.Session) -> str | None:
        answer = session.post(f"{web_url}/api/predict", files=files, timeout=15)
        return None if answer.status_code == 200 else f"HTTP {answer.status_code} {answer.text[:120]}"

    return call


def grpc_predict(target: str, model: str = "half_plus_two") -> Callable[[object], str | None]:
    """A gRPC Predict of half_plus_two through one channel per client (tensorflow-serving-api stubs)."""
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    json_format.ParseDict(
        {
            "model_spec": {"name": model},
            "inputs": {
                "x": {
                    "dtype": "DT_FLOAT",
                    "tensor_shape": {"dim": [{"size": 3}]},
                    "float_val": [1.0, 2.0, 5.0],
                }
            },
        },
        request,
    )

    def call(channel: grpc.Channel) -> str | None:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=10)
        except grpc.RpcError as error:
            return f"{error.code().name} {error.details()}"
        values = list(response.outputs["y"].float_val)
        return None if values == [2.5, 3.0, 4.5] else f"wrong answer {values}"

    return call


def _client(
    kind: str, connect: Callable[[], object], call: Callable, report: LoadReport, stop: threading.Event
) -> None:
    connection = connect()
    deadline = time.monotonic() + MAX_SECONDS
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if stop.is_set() or time.monotonic() > deadline:
            return
        try:
            failure = call(connection)
        except Exception as error:  # every exception is a failed request, whatever its type
            failure = f"{type(error).__name__}: {error}"
        report.record(kind, failure)
        time.sleep(PAUSE_SECONDS)


@contextmanager
def continuous_load(
    clients: dict[str, tuple[Callable[[], object], Callable]], per_kind: int = 2
) -> Iterator[LoadReport]:
    """Runs `per_kind` threads of each kind ({kind: (connect, call)}) for as long as the block runs."""
    report, stop = LoadReport(), threading.Event()
    threads = [
        threading.Thread(target=_client, args=(kind, connect, call, report, stop), daemon=True)
        for kind, (connect, call) in clients.items()
        for _ in range(per_kind)
    ]
    for thread in threads:
        thread.start()
    try:
        yield report
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


def fleet_clients(address: str, rest_port: int = 8501, grpc_port: int = 8500, web_port: int = 8080) -> dict:
    """REST, gRPC and web clients against one address (the load balancer)."""
    return {
        "rest": (requests.Session, rest_predict(f"http://{address}:{rest_port}")),
        "grpc": (
            lambda: grpc.insecure_channel(f"{address}:{grpc_port}"),
            grpc_predict(f"{address}:{grpc_port}"),
        ),
        "web": (requests.Session, web_predict(f"http://{address}:{web_port}")),
    }
