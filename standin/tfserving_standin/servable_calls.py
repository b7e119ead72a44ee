"""The server's request handlers, shared by REST and gRPC: predict, model metadata, model status."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from tfserving_standin.errors import Code, invalid_argument
from tfserving_standin.metrics import METRICS, RUNTIME_LATENCY
from tfserving_standin.model_manager import ModelManager
from tfserving_standin.saved_model_loader import DEFAULT_SIGNATURE, SavedModelBundle

SIGNATURE_DEF_FIELD = "signature_def"


def requested_version(manager: ModelManager, spec: model_pb2.ModelSpec) -> int | None:
    """ServerCore::ServableRequestFromModelSpec: Latest, Specific(version) or Specific(label's version)."""
    if not spec.name:
        raise invalid_argument("ModelSpec has no name specified.")
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return spec.version.value
    if choice == "version_label":
        return manager.resolve_label(spec.name, spec.version_label)
    return None


def predict(
    manager: ModelManager,
    spec: model_pb2.ModelSpec,
    inputs: Mapping[str, np.ndarray],
    output_filter: list[str],
    timeout_in_ms: int,
) -> tuple[int, str, dict[str, np.ndarray]]:
    """Returns (version served, signature name, outputs by alias).

    The run itself is timed as predict_util.cc's RunPredict does, for REST and gRPC alike.
    """
    version = requested_version(manager, spec)
    with manager.servable(spec.name, version) as (served_version, bundle):
        assert isinstance(bundle, SavedModelBundle)
        signature = spec.signature_name or DEFAULT_SIGNATURE
        start = time.monotonic()
        outputs = bundle.run(signature, inputs, output_filter, timeout_in_ms)
        micros = (time.monotonic() - start) * 1e6
    METRICS.observe(RUNTIME_LATENCY, (spec.name, "Predict", "TF1"), micros)
    return served_version, signature, outputs


def model_metadata(
    manager: ModelManager, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """GetModelMetadataImpl: the servable's SignatureDefMap packed into metadata["signature_def"]."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            raise invalid_argument(f"Metadata field {field} is not supported")
    version = requested_version(manager, request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    with manager.servable(request.model_spec.name, version) as (served_version, bundle):
        assert isinstance(bundle, SavedModelBundle)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in bundle.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature)
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = served_version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
    return response


def model_status(
    manager: ModelManager, request: get_model_status_pb2.GetModelStatusRequest
) -> get_model_status_pb2.GetModelStatusResponse:
    """GetModelStatusImpl: every known version's state and last error."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    spec = request.model_spec
    # Like the real GetModelStatusImpl, a version label is not resolved: all versions are listed.
    version = spec.version.value if spec.HasField("version") else None
    response = get_model_status_pb2.GetModelStatusResponse()
    for number, state in manager.version_states(spec.name, version):
        entry = response.model_version_status.add()
        entry.version = number
        entry.state = state.state
        if state.error is not None:
            entry.status.error_code = int(state.error.code)
            entry.status.error_message = state.error.message
        else:
            entry.status.error_code = int(Code.OK)
    return response
