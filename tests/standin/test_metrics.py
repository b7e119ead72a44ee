"""Prometheus metrics on the REST port: the real server's names, label sets, units and buckets.

Names and labels are those of TF Serving's servables/tensorflow/util.cc, saved_model_warmup_util.cc and
TensorFlow's cc/saved_model/loader.cc, which the monitoring role's alert rules are written against.
"""

from __future__ import annotations

import grpc
import pytest
import requests
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.standin.metrics_support import METRICS_PATH, scrape
from tests.standin.test_grpc_contract import float_tensor

pytestmark = pytest.mark.usefixtures("standin_only")

TIMEOUT = 30
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
RUNTIME_LATENCY = ":tensorflow:serving:runtime_latency"
WARMUP_LATENCY = ":tensorflow:serving:model_warmup_latency"
LOAD_ATTEMPT_COUNT = ":tensorflow:cc:saved_model:load_attempt_count"
LOAD_LATENCY = ":tensorflow:cc:saved_model:load_latency"


def grpc_predict(target: str, model: str) -> grpc.StatusCode:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(float_tensor([1.0]))
    with grpc.insecure_channel(target) as channel:
        try:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=TIMEOUT)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def rest_predict(rest_url: str, model: str) -> int:
    url = f"{rest_url}/v1/models/{model}:predict"
    return requests.post(url, json={"instances": [1.0]}, timeout=TIMEOUT).status_code


def test_rest_and_grpc_requests_are_counted_and_timed_as_the_real_server_does(bytes_server) -> None:
    before = scrape(bytes_server.rest_url)
    assert [rest_predict(bytes_server.rest_url, "warmup") for _ in range(2)] == [200, 200]
    assert rest_predict(bytes_server.rest_url, "missing") == 404
    status = requests.get(f"{bytes_server.rest_url}/v1/models/warmup", timeout=TIMEOUT)
    assert status.status_code == 200
    assert [grpc_predict(bytes_server.grpc_target, "warmup") for _ in range(3)] == [grpc.StatusCode.OK] * 3
    assert grpc_predict(bytes_server.grpc_target, "missing") == grpc.StatusCode.NOT_FOUND
    after = scrape(bytes_server.rest_url)

    def grown(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    # Every answered call counts, with its status code's name; only successful ones are timed.
    assert grown(REQUEST_COUNT, model_name="warmup", status="OK") == 6
    assert grown(REQUEST_COUNT, model_name="missing", status="NOT_FOUND") == 2
    # REST's API label is the verb as written in the URL ("" for a GET); gRPC's is the method name.
    assert grown(f"{REQUEST_LATENCY}_count", model_name="warmup", API="predict", entrypoint="REST") == 2
    assert grown(f"{REQUEST_LATENCY}_count", model_name="warmup", API="", entrypoint="REST") == 1
    assert grown(f"{REQUEST_LATENCY}_count", model_name="warmup", API="Predict", entrypoint="GRPC") == 3
    assert grown(f"{REQUEST_LATENCY}_count", model_name="missing", API="Predict", entrypoint="GRPC") == 0
    assert grown(f"{RUNTIME_LATENCY}_count", model_name="warmup", API="Predict", runtime="TF1") == 5
    assert grown(f"{REQUEST_LATENCY}_sum", model_name="warmup", API="Predict", entrypoint="GRPC") > 0

    assert after.types[REQUEST_COUNT] == "counter"
    assert f"\n{REQUEST_COUNT}{{" in after.text and "_total" not in after.text  # no suffix, as the real page
    assert after.label_names(REQUEST_COUNT) == {frozenset({"model_name", "status"})}
    assert after.label_names(f"{REQUEST_LATENCY}_bucket") == {frozenset({"model_name", "API", "entrypoint"})}
    assert after.label_names(f"{RUNTIME_LATENCY}_bucket") == {frozenset({"model_name", "API", "runtime"})}
    # Microseconds in 33 buckets of 10 x 1.8^k, printed with six digits as TF Serving's exporter does.
    bounds = [
        labels["le"]
        for labels, _ in after.samples[f"{REQUEST_LATENCY}_bucket"]
        if labels["API"] == "Predict" and labels["model_name"] == "warmup"
    ]
    assert len(bounds) == 34
    assert bounds[:5] == ["10", "18", "32.4", "58.32", "104.976"]
    assert bounds[-2:] == ["1.47476e+09", "+Inf"]


def test_loads_and_warmup_are_recorded_per_version_directory(bytes_server) -> None:
    page = scrape(bytes_server.rest_url)
    version_dir = str((bytes_server.models["warmup"] / "1").resolve())
    assert page.value(LOAD_ATTEMPT_COUNT, model_path=version_dir, status="success") == 1
    assert page.value(LOAD_ATTEMPT_COUNT, model_path=version_dir, status="fail") == 0
    assert page.value(LOAD_LATENCY, model_path=version_dir) > 0
    assert page.value(f"{WARMUP_LATENCY}_count", model_path=version_dir, status="OK") == 1
    assert page.label_names(LOAD_ATTEMPT_COUNT) == {frozenset({"model_path", "status"})}
    assert page.label_names(f"{WARMUP_LATENCY}_bucket") == {frozenset({"model_path", "status"})}
    assert page.types[LOAD_LATENCY] == "counter"  # a running total, not a histogram


@pytest.mark.usefixtures("standin_only")
def test_metrics_are_off_without_a_monitoring_config(endpoint) -> None:
    assert requests.get(f"{endpoint.rest_url}{METRICS_PATH}", timeout=TIMEOUT).status_code == 404
