"""The REST API on --rest_api_port, as a Flask app served by waitress.

Routing follows model_servers/http_rest_api_util.cc: every path matching `(?i)/v1/.*` is handled by
the API (a path it cannot parse answers 400 "Malformed request"), the Prometheus path is served when
the monitoring config enables it, and anything else gets a plain, non-JSON 404.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from flask import Flask, Response, request
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from tfserving_standin import rest_json, servable_calls
from tfserving_standin.errors import ServingError, invalid_argument
from tfserving_standin.metrics import METRICS, prometheus_page
from tfserving_standin.model_manager import ModelManager
from tfserving_standin.saved_model_loader import DEFAULT_SIGNATURE, SavedModelBundle

log = logging.getLogger("tensorflow_serving.model_servers.http_server")

_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE
)
_INT64_MAX = 2**63 - 1


def _model_spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=unquote(name))
    if version:
        number = int(version)
        if number > _INT64_MAX:
            raise invalid_argument(f"Failed to convert version: {version} to numeric.")
        spec.version.value = number
    if label:
        spec.version_label = unquote(label)
    return spec


def _status_json(response: get_model_status_pb2.GetModelStatusResponse) -> str:
    return json_format.MessageToJson(response, indent=1, always_print_fields_with_no_presence=True)


def _metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> str:
    """ToJsonString(GetModelMetadataResponse): model_spec plus the unpacked SignatureDefMap."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[servable_calls.SIGNATURE_DEF_FIELD].Unpack(signature_map)
    options = {"indent": 1, "always_print_fields_with_no_presence": True, "preserving_proto_field_name": True}
    spec = json_format.MessageToJson(response.model_spec, **options)
    signatures = json_format.MessageToJson(signature_map, **options)
    return f'{{\n"model_spec":{spec},\n"metadata": {{"signature_def": {signatures}}}\n}}\n'


class RestApi:
    def __init__(self, manager: ModelManager, timeout_in_ms: int, cors: bool) -> None:
        self.manager = manager
        self.timeout_in_ms = timeout_in_ms
        self.cors = cors

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, str]:
        if method == "POST":
            match = _PREDICTION_PATH.fullmatch(path)
            if match:
                name, version, label, verb = match.groups()
                spec = _model_spec(name, version, label)
                if verb.lower() != "predict":
                    # :classify/:regress need tf.Example parsing; the bundle does not call them.
                    raise ServingError(
                        servable_calls.Code.UNIMPLEMENTED,
                        f"{verb} is not implemented by the tfserving-stack stand-in",
                    )
                return 200, self.predict(spec, body)
        elif method == "GET":
            match = _STATUS_PATH.fullmatch(path)
            if match:
                name, version, label, subresource = match.groups()
                if not name:
                    raise invalid_argument("Missing model name in request.")
                spec = _model_spec(name, version, label)
                if subresource:
                    metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(
                        model_spec=spec, metadata_field=[servable_calls.SIGNATURE_DEF_FIELD]
                    )
                    return 200, _metadata_json(servable_calls.model_metadata(self.manager, metadata_request))
                status_request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
                return 200, _status_json(servable_calls.model_status(self.manager, status_request))
        raise invalid_argument(f"Malformed request: {method} {path}")

    def predict(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        document = rest_json.parse_json(body)
        spec.signature_name = rest_json.signature_name_of(document)
        version = servable_calls.requested_version(self.manager, spec)
        # GetInfoMap: the signature's inputs decide how the JSON values are typed.
        with self.manager.servable(spec.name, version) as (served_version, bundle):
            assert isinstance(bundle, SavedModelBundle)
            signature_name = spec.signature_name or DEFAULT_SIGNATURE
            signature = bundle.signature_defs.get(signature_name)
            if signature is None:
                raise invalid_argument(
                    f'Serving signature name: "{signature_name}" not found in signature def'
                )
            inputs, request_format = rest_json.request_to_tensors(
                document, signature.inputs, spec.signature_name
            )
        spec.ClearField("version_choice")
        spec.version.value = served_version
        _, _, outputs = servable_calls.predict(self.manager, spec, inputs, [], self.timeout_in_ms, "REST")
        return rest_json.tensors_to_json(outputs, request_format)


def create_app(manager: ModelManager, timeout_in_ms: int, cors: bool, prometheus_path: str | None) -> Flask:
    """The Flask application; `prometheus_path` is None unless the monitoring config enables metrics."""
    app = Flask("tfserving_standin")
    api = RestApi(manager, timeout_in_ms, cors)

    @app.route(
        "/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
    )
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    def dispatch(path: str) -> Response:
        """Every request: metrics page, REST API, or a plain 404."""
        full_path = "/" + path
        if prometheus_path is not None and full_path == prometheus_path:
            return Response(prometheus_page(), status=200, content_type="text/plain; version=0.0.4")
        if not _API_PATH.fullmatch(full_path):
            return Response(
                "<html><body><h1>404 Not Found</h1></body></html>", status=404, content_type="text/html"
            )
        headers = {"Content-Type": "application/json"}
        if cors:
            headers.update(
                {
                    "Access-Control-Allow-Origin": "*",
                    "Access-Control-Allow-Methods": "POST, GET",
                    "Access-Control-Allow-Headers": "Content-Type",
                }
            )
        try:
            if request.method == "OPTIONS":
                if not re.search(r"https?://", request.headers.get("Origin", "")):
                    raise servable_calls.ServingError(
                        servable_calls.Code.FAILED_PRECONDITION, "Origin header is missing in CORS preflight"
                    )
                return Response("", status=200, headers=headers)
            status, body = api.handle(request.method, full_path, request.get_data(cache=False))
        except ServingError as error:
            METRICS.count_request(_model_name(full_path), error.code.name)
            return Response(rest_json.error_json(error.message), status=error.http_status, headers=headers)
        METRICS.count_request(_model_name(full_path), "OK")
        return Response(body, status=status, headers=headers)

    return app


def _model_name(path: str) -> str:
    match = re.match(r"/v1/models/([^/:]+)", path, re.IGNORECASE)
    return unquote(match.group(1)) if match else ""
