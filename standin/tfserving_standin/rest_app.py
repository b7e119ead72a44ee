"""The REST API on --rest_api_port, as a Flask app served by waitress.

Routing follows model_servers/http_rest_api_util.cc: every path matching `(?i)/v1/.*` is handled by
the API (a path it cannot parse answers 400 "Malformed request"), the Prometheus path is served when
the monitoring config enables it, and anything else gets a plain, non-JSON 404.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from urllib.parse import unquote

from flask import Flask, Response, request
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from tfserving_standin import metrics, rest_json, servable_calls
from tfserving_standin.errors import Code, ServingError, invalid_argument
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


@dataclasses.dataclass
class RestCall:
    """What the request named, for the metrics: HttpRestApiHandler::ProcessRequest's model_name and
    method (the verb after the colon as written, "" for GET), left empty when the path does not parse."""

    model_name: str = ""
    method: str = ""


class RestApi:
    def __init__(self, manager: ModelManager, timeout_in_ms: int, cors: bool) -> None:
        self.manager = manager
        self.timeout_in_ms = timeout_in_ms
        self.cors = cors

    def handle(self, method: str, path: str, body: bytes, call: RestCall) -> tuple[int, str]:
        if method == "POST":
            match = _PREDICTION_PATH.fullmatch(path)
            if match:
                name, version, label, verb = match.groups()
                call.model_name, call.method = unquote(name), verb
                spec = _model_spec(name, version, label)
                if verb.lower() != "predict":
                    # :classify/:regress need tf.Example parsing; the bundle does not call them.
                    raise ServingError(
                        Code.UNIMPLEMENTED,
                        f"{verb} is not implemented by the tfserving-stack stand-in",
                    )
                return 200, self.predict(spec, body)
        elif method == "GET":
            match = _STATUS_PATH.fullmatch(path)
            if match:
                name, version, label, subresource = match.groups()
                call.model_name = unquote(name or "")
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
        _, _, outputs = servable_calls.predict(self.manager, spec, inputs, [], self.timeout_in_ms)
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
            return Response(metrics.prometheus_page(), status=200, content_type="text/plain; version=0.0.4")
        if not _API_PATH.fullmatch(full_path):
            return Response(
                "<html><body><h1>404 Not Found</h1></body></html>", status=404, content_type="text/html"
            )
        start = time.monotonic()
        call = RestCall()
        status = "OK"
        try:
            if request.method == "OPTIONS":
                code, body = _preflight(request.headers.get("Origin", ""))
            else:
                code, body = api.handle(request.method, full_path, request.get_data(cache=False), call)
        except ServingError as error:
            status = error.code.name
            code, body = error.http_status, rest_json.error_json(error.message)
        micros = (time.monotonic() - start) * 1e6
        metrics.record_request(call.model_name, status, call.method, "REST", micros)
        return Response(body, status=code, headers=_headers(cors))

    return app


def _preflight(origin: str) -> tuple[int, str]:
    """A CORS preflight, answered before the API (http_server.cc); counted with no model name."""
    if not re.search(r"https?://", origin):
        raise ServingError(Code.FAILED_PRECONDITION, "Origin header is missing in CORS preflight")
    return 200, ""


def _headers(cors: bool) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if cors:
        headers.update(
            {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "POST, GET",
                "Access-Control-Allow-Headers": "Content-Type",
            }
        )
    return headers
