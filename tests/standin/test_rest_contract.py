"""REST contract of TF Serving (facts file, api_rest.md), checked against whatever server `endpoint` names."""

from __future__ import annotations

import base64

import pytest
import requests

TIMEOUT = 30


def url(endpoint, path: str) -> str:
    return f"{endpoint.rest_url}{path}"


def test_status_of_half_plus_two_is_available_with_ok_error_code(endpoint) -> None:
    response = requests.get(url(endpoint, "/v1/models/half_plus_two"), timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    statuses = response.json()["model_version_status"]
    available = [s for s in statuses if s["state"] == "AVAILABLE"]
    assert available, statuses
    assert available[0]["status"] == {"error_code": "OK", "error_message": ""}
    assert available[0]["version"].isdigit()  # int64 travels as a JSON string


def test_status_of_a_specific_version(endpoint) -> None:
    statuses = requests.get(url(endpoint, "/v1/models/half_plus_two"), timeout=TIMEOUT).json()
    version = next(s["version"] for s in statuses["model_version_status"] if s["state"] == "AVAILABLE")
    response = requests.get(url(endpoint, f"/v1/models/half_plus_two/versions/{version}"), timeout=TIMEOUT)
    assert response.status_code == 200
    assert [s["version"] for s in response.json()["model_version_status"]] == [version]


def test_metadata_lists_the_serving_default_signature(endpoint) -> None:
    response = requests.get(url(endpoint, "/v1/models/half_plus_two/metadata"), timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["model_spec"]["name"] == "half_plus_two"
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert signature["outputs"]["y"]["dtype"] == "DT_FLOAT"


def test_predict_row_format_is_the_quickstart_answer(endpoint) -> None:
    response = requests.post(
        url(endpoint, "/v1/models/half_plus_two:predict"),
        json={"instances": [1.0, 2.0, 5.0]},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [2.5, 3.0, 4.5]}


def test_predict_columnar_format_answers_outputs(endpoint) -> None:
    response = requests.post(
        url(endpoint, "/v1/models/half_plus_two:predict"),
        json={"signature_name": "serving_default", "inputs": {"x": [1.0, 2.0, 5.0]}},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"outputs": [2.5, 3.0, 4.5]}


def test_predict_whole_numbers_are_written_as_floats(endpoint) -> None:
    response = requests.post(
        url(endpoint, "/v1/models/half_plus_two:predict"), json={"instances": [2, 4]}, timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert "3.0" in response.text and "4.0" in response.text


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (
            "/v1/models/foo:predict",
            b'{"instances": [1.0]}',
            404,
            "Servable not found for request: Latest(foo)",
        ),
        (
            "/v1/models/half_plus_two/versions/987654:predict",
            b'{"instances": [1.0]}',
            404,
            "Servable not found for request: Specific(half_plus_two, 987654)",
        ),
        ("/v1/models/half_plus_two:predict", b"", 400, "JSON Parse error: The document is empty"),
        ("/v1/models/half_plus_two:predict", b'{"instances": [1.0', 400, "JSON Parse error:"),
        ("/v1/models/half_plus_two:predict", b'{"foo": [1.0]}', 400, "Missing 'inputs' or 'instances' key"),
        ("/v1/models/half_plus_two:predict", b'{"instances": ["a"]}', 400, "is not of expected type: float"),
        (
            "/v1/models/half_plus_two:predict",
            b'{"signature_name": "x", "instances": [1.0]}',
            400,
            'Serving signature name: "x" not found in signature def',
        ),
        (
            "/v1/models/half_plus_two:predict",
            b'{"instances": [1.0], "inputs": [1.0]}',
            400,
            "expecting only one of 'inputs' or 'instances' keys to exist",
        ),
        (
            "/v1/models/half_plus_two/labels/nolabel:predict",
            b'{"instances": [1.0]}',
            400,
            "Unrecognized servable version label: nolabel",
        ),
    ],
)
def test_predict_errors_have_the_real_status_and_message(endpoint, path, body, status, message) -> None:
    response = requests.post(url(endpoint, path), data=body, timeout=TIMEOUT)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v1/models", 400, "Missing model name in request."),
        ("/v1/models/foo", 404, "Could not find any versions of model foo"),
        (
            "/v1/models/half_plus_two/versions/987654",
            404,
            "Could not find version 987654 of model half_plus_two",
        ),
        ("/v1/models/foo/metadata", 404, "Servable not found for request: Latest(foo)"),
        ("/v1/nothing/here", 400, "Malformed request: GET /v1/nothing/here"),
    ],
)
def test_get_errors_have_the_real_status_and_message(endpoint, path, status, message) -> None:
    response = requests.get(url(endpoint, path), timeout=TIMEOUT)
    assert response.status_code == status, response.text
    assert response.json() == {"error": message}


def test_paths_outside_v1_answer_a_plain_404(endpoint) -> None:
    response = requests.get(url(endpoint, "/healthz"), timeout=TIMEOUT)
    assert response.status_code == 404
    with pytest.raises(ValueError):
        response.json()


def test_b64_input_reaches_a_string_signature_as_bytes(endpoint, request) -> None:
    if endpoint.external:
        pytest.skip("needs the stand-in's echo_bytes test model")
    server = request.getfixturevalue("bytes_server")
    payload = bytes(range(256))
    response = requests.post(
        f"{server.rest_url}/v1/models/echo_bytes:predict",
        json={"instances": [{"b64": base64.b64encode(payload).decode()}]},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    # Output aliases ending in _bytes come back base64-encoded; others as plain values.
    assert base64.b64decode(prediction["text_bytes"]["b64"]) == payload
    assert prediction["length"] == 256
