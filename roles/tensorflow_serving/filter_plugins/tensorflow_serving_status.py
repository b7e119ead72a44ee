"""Filters that read TF Serving's model status answer (GET /v1/models/<name>) for the health gate.

The status call answers HTTP 200 whatever the model's state, and a version that failed to load shows
state END with a non-OK error_code, so readiness has to be read per version.
"""

from __future__ import annotations

from typing import Any


def _statuses(status_json: Any) -> list[dict[str, Any]]:
    if not isinstance(status_json, dict):
        return []
    return list(status_json.get("model_version_status") or [])


def _wanted(status_json: Any, expected_versions: list[Any]) -> list[str]:
    """The versions to judge: the expected ones, or every reported one when nothing is expected."""
    if expected_versions:
        return [str(version) for version in expected_versions]
    return [str(status.get("version")) for status in _statuses(status_json)]


def tensorflow_serving_unready(status_json: Any, expected_versions: list[Any]) -> list[str]:
    """Why the model is not ready: one line per expected version not AVAILABLE with error_code OK."""
    by_version = {str(status.get("version")): status for status in _statuses(status_json)}
    wanted = _wanted(status_json, expected_versions)
    if not wanted:
        error = status_json.get("error") if isinstance(status_json, dict) else None
        return [error or "no version reported"]
    problems = []
    for version in wanted:
        status = by_version.get(version)
        if status is None:
            problems.append(f"version {version} not reported yet")
            continue
        code = (status.get("status") or {}).get("error_code", "OK")
        if status.get("state") != "AVAILABLE" or code != "OK":
            message = (status.get("status") or {}).get("error_message", "")
            problems.append(f"version {version} {status.get('state')} {code} {message}".rstrip())
    return problems


def tensorflow_serving_load_errors(status_json: Any, expected_versions: list[Any]) -> list[str]:
    """Expected versions whose load has failed (non-OK error_code): waiting longer will not help."""
    wanted = set(_wanted(status_json, expected_versions))
    errors = []
    for status in _statuses(status_json):
        detail = status.get("status") or {}
        if str(status.get("version")) in wanted and detail.get("error_code", "OK") != "OK":
            message = detail.get("error_message", "")
            errors.append(f"version {status.get('version')}: {detail.get('error_code')} {message}".rstrip())
    return errors


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "tensorflow_serving_unready": tensorflow_serving_unready,
            "tensorflow_serving_load_errors": tensorflow_serving_load_errors,
        }
