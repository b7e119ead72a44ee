"""Configuration: defaults, then the config file, then TFWEB_* variables, then test_config; types."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.webapp.webtest_support import GUNICORN, GUNICORN_CONFIG
from tfserving_web import create_app, settings


def test_defaults_without_file_or_environment(tmp_path: Path) -> None:
    app = create_app()
    assert app.config["TFSERVING_TRANSPORT"] == "rest"
    assert app.config["TFSERVING_REST_URL"] == "http://127.0.0.1:8501"
    assert app.config["MODEL_NAME"] == "digits"
    assert app.config["MODEL_CANDIDATES"] == ["digits"]
    assert app.config["STORE_UPLOADS"] is True
    assert app.config["RATE_LIMIT"] == 0 and app.config["TRUSTED_PROXIES"] == []
    assert app.config["UPLOADS_MAX_AGE"] == 86400.0
    # Default upload folder: the design's predict_images, inside the instance folder.
    assert app.config["UPLOAD_FOLDER"] == str(tmp_path / "instance" / "predict_images")


def test_file_overrides_defaults_and_environment_overrides_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "webapp.cfg"
    config_file.write_text(
        'MODEL_NAME = "from_file"\nREAD_TIMEOUT = 3\nTFSERVING_REST_URL = "http://file.example:8501"\n'
    )
    monkeypatch.setenv("TFWEB_CONFIG_FILE", str(config_file))
    app = create_app()
    assert app.config["MODEL_NAME"] == "from_file"
    assert app.config["READ_TIMEOUT"] == 3.0

    monkeypatch.setenv("TFWEB_MODEL_NAME", "from_env")
    monkeypatch.setenv("TFWEB_READ_TIMEOUT", "7.5")
    app = create_app()
    assert app.config["MODEL_NAME"] == "from_env"
    assert app.config["READ_TIMEOUT"] == 7.5
    # Keys the environment leaves alone keep the file's value.
    assert app.config["TFSERVING_REST_URL"] == "http://file.example:8501"

    app = create_app({"MODEL_NAME": "from_test_config"})
    assert app.config["MODEL_NAME"] == "from_test_config"


def test_instance_folder_config_file_is_read(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "webapp.cfg").write_text("TOP_CLASSES = 3\n")
    assert create_app().config["TOP_CLASSES"] == 3


def test_environment_strings_become_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # An EnvironmentFile only holds strings; the app must not compare "2" with numbers later.
    monkeypatch.setenv("TFWEB_CONNECT_TIMEOUT", "1.5")
    monkeypatch.setenv("TFWEB_CONNECT_RETRIES", "0")
    monkeypatch.setenv("TFWEB_MAX_CONTENT_LENGTH", "1048576")
    monkeypatch.setenv("TFWEB_STORE_UPLOADS", "no")
    monkeypatch.setenv("TFWEB_MODEL_CANDIDATES", "digits_b, digits ,other")
    monkeypatch.setenv("TFWEB_TFSERVING_TRANSPORT", "REST")
    monkeypatch.setenv("TFWEB_TFSERVING_REST_URL", "http://10.0.0.5:8501/")
    config = create_app().config
    assert config["CONNECT_TIMEOUT"] == 1.5 and isinstance(config["CONNECT_TIMEOUT"], float)
    assert config["CONNECT_RETRIES"] == 0 and isinstance(config["CONNECT_RETRIES"], int)
    assert config["MAX_CONTENT_LENGTH"] == 1048576
    assert config["STORE_UPLOADS"] is False
    # The default model comes first and only once.
    assert config["MODEL_CANDIDATES"] == ["digits", "digits_b", "other"]
    assert config["TFSERVING_TRANSPORT"] == "rest"
    assert config["TFSERVING_REST_URL"] == "http://10.0.0.5:8501"


def test_json_list_of_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFWEB_MODEL_CANDIDATES", '["a", "b"]')
    assert create_app().config["MODEL_CANDIDATES"] == ["digits", "a", "b"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TFWEB_READ_TIMEOUT", "ten"),
        ("TFWEB_READ_TIMEOUT", "0"),
        ("TFWEB_CONNECT_TIMEOUT", "-1"),
        ("TFWEB_MAX_CONTENT_LENGTH", "4MB"),
        ("TFWEB_STORE_UPLOADS", "maybe"),
        ("TFWEB_TFSERVING_TRANSPORT", "carrier-pigeon"),
        ("TFWEB_TFSERVING_REST_URL", "127.0.0.1:8501"),
        ("TFWEB_CONNECT_RETRIES", "true"),
        ("TFWEB_UPLOADS_MAX_AGE", "0"),
        ("TFWEB_SECRET_KEY", "short"),
        ("TFWEB_RATE_LIMIT", "-5"),
        ("TFWEB_RATE_LIMIT_BURST", "0"),
        ("TFWEB_RATE_LIMIT_LOOPBACK", "sometimes"),
        ("TFWEB_TRUSTED_PROXIES", "haproxy.local"),
        ("TFWEB_SESSION_COOKIE_SECURE", "https"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(settings.SettingsError, match=variable):
        create_app()


def test_creating_the_app_does_not_import_grpc_stubs(tmp_path: Path) -> None:
    # A REST deployment loads no gRPC at all (grpcio and protobuf are the `grpc` extra).
    code = (
        "import sys; from tfserving_web import create_app; create_app();"
        "print(any(name.startswith(('tensorflow', 'grpc')) for name in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_gunicorn_timeout_exceeds_the_longest_model_server_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFWEB_READ_TIMEOUT", "50")
    monkeypatch.setenv("TFWEB_CONNECT_TIMEOUT", "3")
    config = settings.load()
    assert settings.gunicorn_timeout(config) > settings.longest_model_server_wait(config) >= 50


def _gunicorn_settings(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # Run from another directory, as systemd does: the config must find the app by itself.
    return subprocess.run(
        [str(GUNICORN), "-c", GUNICORN_CONFIG, *args],
        cwd="/",
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _printed(output: str) -> dict[str, str]:
    """gunicorn --print-config's `name = value` lines."""
    return {
        name.strip(): value.strip()
        for name, _, value in (line.partition("=") for line in output.splitlines())
    }


def test_gunicorn_check_config_passes(tmp_path: Path) -> None:
    result = _gunicorn_settings({"TFWEB_INSTANCE_PATH": str(tmp_path)}, "--check-config")
    assert result.returncode == 0, result.stderr


def test_gunicorn_settings_follow_the_environment(tmp_path: Path) -> None:
    result = _gunicorn_settings(
        {
            "TFWEB_INSTANCE_PATH": str(tmp_path),
            "TFWEB_BIND": "127.0.0.1:18080",
            "TFWEB_WORKERS": "3",
            "TFWEB_READ_TIMEOUT": "100",
        },
        "--print-config",
    )
    assert result.returncode == 0, result.stderr
    printed = _printed(result.stdout)
    assert printed["bind"] == "['127.0.0.1:18080']"
    assert printed["workers"] == "3"
    assert int(printed["timeout"]) > 100
    assert printed["accesslog"] == "-" and printed["errorlog"] == "-"
    assert printed["daemon"] == "False"


def test_gunicorn_runs_one_worker_per_core_by_default(tmp_path: Path) -> None:
    """TFWEB_WORKERS=0 (what the webapp role writes by default) and unset alike; a word is refused.
    TFWEB_ACCESS_LOG=false (the role's default too) turns gunicorn's access log off."""
    cores = len(os.sched_getaffinity(0))
    for value in ("0", ""):
        result = _gunicorn_settings(
            {"TFWEB_INSTANCE_PATH": str(tmp_path), "TFWEB_WORKERS": value}, "--print-config"
        )
        assert result.returncode == 0, result.stderr
        assert _printed(result.stdout)["workers"] == str(cores)
    quiet = _gunicorn_settings(
        {"TFWEB_INSTANCE_PATH": str(tmp_path), "TFWEB_ACCESS_LOG": "false"}, "--print-config"
    )
    assert _printed(quiet.stdout)["accesslog"] == "None"
    refused = _gunicorn_settings(
        {"TFWEB_INSTANCE_PATH": str(tmp_path), "TFWEB_WORKERS": "many"}, "--check-config"
    )
    assert refused.returncode != 0 and "TFWEB_WORKERS must be a whole number" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_metrics_folder_reaches_the_workers_only(tmp_path: Path) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR, gunicorn's master gets a folder of its own for its workers
    (raw_env); importing the config module leaves the importer's environment alone."""
    environment = {**os.environ, "TFWEB_INSTANCE_PATH": str(tmp_path)}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = _gunicorn_settings({"TFWEB_INSTANCE_PATH": str(tmp_path)}, "--print-config")
    assert "PROMETHEUS_MULTIPROC_DIR=" in _printed(result.stdout)["raw_env"]
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, tfserving_web.gunicorn_conf; print(os.environ.get('PROMETHEUS_MULTIPROC_DIR'))",
        ],
        capture_output=True,
        text=True,
        env=environment,
        cwd="/",
        timeout=60,
    )
    assert imported.stdout.strip() == "None", imported.stderr


def test_gunicorn_check_config_fails_on_a_bad_setting(tmp_path: Path) -> None:
    result = _gunicorn_settings(
        {"TFWEB_INSTANCE_PATH": str(tmp_path), "TFWEB_READ_TIMEOUT": "soon"}, "--check-config"
    )
    assert result.returncode != 0
    assert "TFWEB_READ_TIMEOUT" in result.stderr
