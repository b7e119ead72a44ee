"""The tensorflow_serving role's filters, called as Jinja calls them: flags for the unit's command line
and the health gate's reading of TF Serving's model status answer."""

from __future__ import annotations

import pytest

from tests.roles.plugin_loading import load_plugin

flags = load_plugin("tensorflow_serving", "filter_plugins", "tensorflow_serving_flags")
status = load_plugin("tensorflow_serving", "filter_plugins", "tensorflow_serving_status")


def version(number: int, state: str = "AVAILABLE", code: str = "OK", message: str = "") -> dict:
    return {"version": str(number), "state": state, "status": {"error_code": code, "error_message": message}}


def answer(*versions: dict) -> dict:
    return {"model_version_status": list(versions)}


def test_every_filter_is_registered_under_its_function_name() -> None:
    for module in (flags, status):
        for name, function in module.FilterModule().filters().items():
            assert function.__name__ == name


@pytest.mark.parametrize(
    ("extra_flags", "expected"),
    [
        ({}, []),
        ({"tensorflow_intra_op_parallelism": 4}, ["--tensorflow_intra_op_parallelism=4"]),
        # TensorFlow's flag parser takes only lower-case booleans; Python's str() would say True.
        ({"enable_profiler": True, "flush_filesystem_caches": False},
         ["--enable_profiler=true", "--flush_filesystem_caches=false"]),
        # Dashes given by the user are not doubled.
        ({"--grpc_max_threads": 8}, ["--grpc_max_threads=8"]),
        ({"b_flag": "x", "a_flag": "y"}, ["--a_flag=y", "--b_flag=x"]),
        ({"grpc_channel_arguments": "grpc.max_connection_age_ms=60000"},
         ["--grpc_channel_arguments=grpc.max_connection_age_ms=60000"]),
    ],
)  # fmt: skip
def test_flag_args(extra_flags: dict, expected: list[str]) -> None:
    assert flags.tensorflow_serving_flag_args(extra_flags) == expected


def test_ready_when_every_expected_version_is_available() -> None:
    assert status.tensorflow_serving_unready(answer(version(1), version(2)), [1, 2]) == []
    # Expected versions come as ints from the role and as strings from TF Serving.
    assert status.tensorflow_serving_unready(answer(version(2)), ["2"]) == []


def test_an_unexpected_extra_version_does_not_matter() -> None:
    assert status.tensorflow_serving_unready(answer(version(1, "LOADING"), version(2)), [2]) == []


def test_with_nothing_expected_every_reported_version_counts() -> None:
    assert status.tensorflow_serving_unready(answer(version(1), version(2)), []) == []
    assert status.tensorflow_serving_unready(answer(version(1), version(2, "LOADING")), []) == [
        "version 2 LOADING OK"
    ]


def test_unready_names_each_problem_version() -> None:
    problems = status.tensorflow_serving_unready(
        answer(version(3, "LOADING"), version(4, "END", "NOT_FOUND", "Could not find SavedModel")), [3, 4, 5]
    )
    assert problems == [
        "version 3 LOADING OK",
        "version 4 END NOT_FOUND Could not find SavedModel",
        "version 5 not reported yet",
    ]


def test_available_with_an_error_code_is_not_ready() -> None:
    assert status.tensorflow_serving_unready(answer(version(1, "AVAILABLE", "UNKNOWN")), [1]) == [
        "version 1 AVAILABLE UNKNOWN"
    ]


@pytest.mark.parametrize(
    ("status_json", "expected"),
    [
        # A 404 for a model the server does not know answers {"error": ...}.
        ({"error": "Servable not found for request: Latest(digits)"},
         ["Servable not found for request: Latest(digits)"]),
        ({}, ["no version reported"]),
        ({"model_version_status": []}, ["no version reported"]),
        # The uri module's json is missing when the server answered no JSON at all.
        (None, ["no version reported"]),
        ("not json", ["no version reported"]),
    ],
)  # fmt: skip
def test_unready_without_versions(status_json, expected: list[str]) -> None:
    assert status.tensorflow_serving_unready(status_json, []) == expected


def test_load_errors_are_expected_versions_with_an_error_code() -> None:
    reported = answer(
        version(3, "END", "INVALID_ARGUMENT", "truncated"), version(4, "LOADING"), version(1, "END", "X")
    )
    assert status.tensorflow_serving_load_errors(reported, [3, 4]) == [
        "version 3: INVALID_ARGUMENT truncated"
    ]
    assert status.tensorflow_serving_load_errors(reported, []) == [
        "version 3: INVALID_ARGUMENT truncated",
        "version 1: X",
    ]


def test_no_load_errors_while_loading_or_when_nothing_answered() -> None:
    assert status.tensorflow_serving_load_errors(answer(version(2, "LOADING")), [2]) == []
    assert status.tensorflow_serving_load_errors(None, [2]) == []
