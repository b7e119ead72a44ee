"""tensorflow_serving_config_check, run for real: models.config checked with TF Serving's own protobuf
schema and the rules the server applies when it loads a config (reliability case 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.roles.plugin_loading import run_module

GOOD = """
model_config_list {
  config { name: "digits" base_path: "/srv/tfserving/models/digits" model_platform: "tensorflow"
           model_version_policy { latest { num_versions: 2 } } }
  config { name: "half_plus_two" base_path: "gs://bucket/half_plus_two" model_platform: "tensorflow"
           version_labels { key: "stable" value: 1 } }
}
"""


def check(content: str, tmp_path: Path) -> dict:
    return run_module("tensorflow_serving", "tensorflow_serving_config_check", {"content": content}, tmp_path)


def test_a_valid_config_comes_back_unchanged_with_its_models(tmp_path: Path) -> None:
    result = check(GOOD, tmp_path)
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["content"] == GOOD
    assert result["models"] == [
        {"name": "digits", "base_path": "/srv/tfserving/models/digits"},
        {"name": "half_plus_two", "base_path": "gs://bucket/half_plus_two"},
    ]


def test_an_empty_config_is_valid(tmp_path: Path) -> None:
    assert check("model_config_list {}\n", tmp_path)["models"] == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('model_config_list { config { name: "a" base_path: "/m/a" }',
         "Error parsing text-format tensorflow.serving.ModelServerConfig"),
        ('model_config_list { config { name: "a" base_pth: "/m/a" } }',
         "Error parsing text-format tensorflow.serving.ModelServerConfig"),
        ('model_config_list { config { name: "a" base_path: "/m/a" }'
         ' config { name: "a" base_path: "/m/b" } }',
         "Illegal to list model a multiple times in config list"),
        ('model_config_list { config { name: "a" base_path: "models/a" } }',
         "Expected model a to have an absolute path or URI"),
    ],
    ids=["unbalanced", "unknown-field", "duplicate-name", "relative-path"],
)  # fmt: skip
def test_what_the_server_would_reject_fails(tmp_path: Path, content: str, message: str) -> None:
    result = check(content, tmp_path)
    assert result.get("failed") is True
    assert message in result["msg"]


def test_content_is_required(tmp_path: Path) -> None:
    result = run_module("tensorflow_serving", "tensorflow_serving_config_check", {}, tmp_path)
    assert result.get("failed") is True and "content" in result["msg"]
