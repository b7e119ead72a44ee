"""ModelService.HandleReloadConfigRequest, warmup replay, digits over REST (metrics: test_metrics.py)."""

from __future__ import annotations

import base64
import io
import shutil

import grpc
import pytest
import requests
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

TIMEOUT = 30


def reload_config(server, text: str) -> None:
    from google.protobuf import text_format

    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config)
    with grpc.insecure_channel(server.grpc_target) as channel:
        model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=120)


def config_text(base, versions: list[int], labels: dict[str, int]) -> str:
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name="m", base_path=str(base), model_platform="tensorflow")
    model.model_version_policy.specific.versions.extend(versions)
    for label, version in labels.items():
        model.version_labels[label] = version
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def predict(server, suffix: str) -> requests.Response:
    return requests.post(
        f"{server.rest_url}/v1/models/m{suffix}:predict", json={"instances": [2.0]}, timeout=TIMEOUT
    )


@pytest.mark.slow
@pytest.mark.usefixtures("standin_only")
def test_reload_config_moves_a_label_in_two_steps_and_rejects_bad_configs(
    tmp_path, start_standin, standin_test_models
) -> None:
    base = tmp_path / "m"
    shutil.copytree(standin_test_models / "half_plus_two" / "1", base / "1")
    shutil.copytree(standin_test_models / "half_plus_two_v2", base / "2")
    server = start_standin(config_text=config_text(base, [1], {}))
    reload_config(server, config_text(base, [1], {"stable": 1}))
    assert predict(server, "/labels/stable").json() == {"predictions": [3.0]}

    # A label may only point at a loaded version: moving it to a new version takes two reloads.
    with pytest.raises(grpc.RpcError) as caught:
        reload_config(server, config_text(base, [1, 2], {"stable": 2}))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Request to assign label to version 2 of model m, which is not currently available" in (
        caught.value.details()
    )
    reload_config(server, config_text(base, [1, 2], {"stable": 1}))
    reload_config(server, config_text(base, [1, 2], {"stable": 2}))
    assert predict(server, "/labels/stable").json() == {"predictions": [4.0]}

    duplicate = config_text(base, [1, 2], {}).replace(
        "model_config_list {",
        "model_config_list {\n"
        + (f'  config {{ name: "m" base_path: "{base}" model_platform: "tensorflow" }}'),
        1,
    )
    with pytest.raises(grpc.RpcError) as caught:
        reload_config(server, duplicate)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "Illegal to list model m multiple times in config list"
    assert predict(server, "/labels/stable").json() == {"predictions": [4.0]}  # old config still in force


@pytest.mark.usefixtures("standin_only")
def test_warmup_records_are_replayed_at_load(bytes_server) -> None:
    assert "Number of warmup records read: 3." in bytes_server.log_text()


@pytest.mark.usefixtures("standin_only")
def test_string_outputs_without_bytes_suffix_and_multiple_inputs(bytes_server) -> None:
    response = requests.post(
        f"{bytes_server.rest_url}/v1/models/echo_bytes:predict",
        json={"signature_name": "two_inputs", "instances": [{"a": 1.0, "b": 2.0}]},
        timeout=TIMEOUT,
    )
    assert response.json() == {"predictions": [{"product": 2.0, "sum": 3.0}]}
    columnar = requests.post(
        f"{bytes_server.rest_url}/v1/models/echo_bytes:predict",
        json={"signature_name": "two_inputs", "inputs": {"a": [1.0, 2.0], "b": [3.0, 4.0]}},
        timeout=TIMEOUT,
    )
    assert columnar.json() == {"outputs": {"product": [3.0, 8.0], "sum": [4.0, 6.0]}}
    missing = requests.post(
        f"{bytes_server.rest_url}/v1/models/echo_bytes:predict",
        json={"signature_name": "two_inputs", "inputs": {"a": [1.0]}},
        timeout=TIMEOUT,
    )
    assert missing.status_code == 400
    assert missing.json() == {"error": "Missing named input: b in 'inputs' object."}


def test_digits_classifies_a_b64_png(endpoint, request) -> None:
    if not endpoint.external and "digits" not in request.getfixturevalue("tfserving").model_names:
        pytest.skip("serving_model/digits is missing: run `make models-if-missing`")
    from PIL import Image

    image = Image.new("L", (32, 32), color=0)
    for y in range(4, 28):  # a vertical stroke, roughly a "1"
        for x in range(14, 18):
            image.putpixel((x, y), 255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    response = requests.post(
        f"{endpoint.rest_url}/v1/models/digits:predict",
        json={"instances": [{"b64": base64.b64encode(buffer.getvalue()).decode()}]},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    assert len(prediction["probabilities"]) == 10
    assert abs(sum(prediction["probabilities"]) - 1.0) < 1e-3
    assert prediction["class_id"] == max(range(10), key=lambda i: prediction["probabilities"][i])
