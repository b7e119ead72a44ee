"""The gRPC transport needs only grpcio and protobuf: the TF Serving messages come from descriptors
shipped in tfserving_web, which must be exactly those of the installed tensorflow-serving-api."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.webapp.webtest_support import Digit, require_digits
from tfserving_web.model_server import protos

pytestmark = pytest.mark.slow

BUILD_COMMAND = [sys.executable, "-m", "tfserving_web.model_server.protos_build"]


def test_shipped_descriptors_are_those_of_the_installed_tensorflow_serving_api(tmp_path: Path) -> None:
    result = subprocess.run(
        [*BUILD_COMMAND, "--check"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_check_fails_when_the_descriptors_differ(tmp_path: Path) -> None:
    shipped = protos.DESCRIPTOR_SET_PATH.read_bytes()
    altered = tmp_path / "altered.binpb"
    altered.write_bytes(shipped.replace(b"PredictResponse", b"PredictAnswerX", 1))
    result = subprocess.run(
        [*BUILD_COMMAND, "--check", f"--file={altered}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "differs from the installed tensorflow-serving-api" in result.stderr


def test_method_paths_are_those_of_the_installed_services(tmp_path: Path) -> None:
    code = (
        "from tensorflow_serving.apis import model_service_pb2, prediction_service_pb2\n"
        "for module, service, method in ((prediction_service_pb2, 'PredictionService', 'Predict'),"
        " (prediction_service_pb2, 'PredictionService', 'GetModelMetadata'),"
        " (model_service_pb2, 'ModelService', 'GetModelStatus')):\n"
        "    found = module.DESCRIPTOR.services_by_name[service].methods_by_name[method]\n"
        "    print('/' + found.containing_service.full_name + '/' + found.name,"
        " found.input_type.full_name, found.output_type.full_name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True
    )
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines == [
        [
            protos.PREDICT_METHOD,
            "tensorflow.serving.PredictRequest",
            "tensorflow.serving.PredictResponse",
        ],
        [
            protos.GET_MODEL_METADATA_METHOD,
            "tensorflow.serving.GetModelMetadataRequest",
            "tensorflow.serving.GetModelMetadataResponse",
        ],
        [
            protos.GET_MODEL_STATUS_METHOD,
            "tensorflow.serving.GetModelStatusRequest",
            "tensorflow.serving.GetModelStatusResponse",
        ],
    ]


def test_string_tensor_is_what_tensorflow_builds(tmp_path: Path) -> None:
    """The hand-built tensor serializes to the very bytes of tf.make_tensor_proto (in a subprocess:
    TensorFlow stays out of this one)."""
    ours = protos.load_protos().string_tensor([b"\x89PNG one", b"two"]).SerializeToString()
    code = (
        "import sys, tensorflow as tf\n"
        "proto = tf.make_tensor_proto([b'\\x89PNG one', b'two'], dtype=tf.string)\n"
        "sys.stdout.buffer.write(proto.SerializeToString())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, timeout=300, check=True
    )
    assert result.stdout == ours


def test_a_grpc_prediction_loads_neither_tensorflow_nor_numpy(
    tfserving, digits: list[Digit], tmp_path: Path
) -> None:
    """A web worker on the gRPC transport, in a fresh interpreter: the page, a prediction, readiness."""
    require_digits(tfserving)
    image = tmp_path / "digit.png"
    image.write_bytes(digits[0].png)
    code = f"""
import io, sys
from tfserving_web import create_app
app = create_app({{"TESTING": True, "TFSERVING_TRANSPORT": "grpc",
                  "TFSERVING_GRPC_TARGET": {tfserving.grpc_target!r}, "STORE_UPLOADS": False}})
client = app.test_client()
upload = {{"image": (io.BytesIO(open({str(image)!r}, "rb").read()), "d.png")}}
answer = client.post("/api/predict", data=upload)
assert answer.status_code == 200, answer.json
assert client.get("/readyz").status_code == 200
assert client.get("/").status_code == 200
print("grpc" in sys.modules, answer.json["class_id"], answer.json["version"])
heavy = ("tensorflow", "tensorflow_serving", "numpy")
print(sorted(name for name in sys.modules if name.split(".")[0] in heavy))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    uses_grpc, class_id, version = result.stdout.splitlines()[0].split()
    assert uses_grpc == "True" and class_id.isdigit() and int(version) >= 1
    assert result.stdout.splitlines()[1] == "[]"
