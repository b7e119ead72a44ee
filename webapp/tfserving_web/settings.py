"""Configuration of the web front end: defaults, then a config file, then TFWEB_* environment variables.

The same loader serves `create_app()` and `tfserving_web.gunicorn_conf`, so gunicorn's worker timeout is
derived from the very timeouts the app will use and the two cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Config

# Every environment variable starting with this prefix sets the config key named by the rest of it,
# e.g. TFWEB_READ_TIMEOUT=15 sets READ_TIMEOUT. Values are read as JSON when they parse as JSON
# (numbers, true/false, lists), else as plain strings; `normalize` then checks and converts types.
ENV_PREFIX = "TFWEB"

# Where the instance folder is (state: config file default location, stored uploads). Read before
# the app exists, so it is not a config key.
INSTANCE_PATH_VARIABLE = f"{ENV_PREFIX}_INSTANCE_PATH"
# Path of the optional Python config file; default `<instance folder>/webapp.cfg`.
CONFIG_FILE_VARIABLE = f"{ENV_PREFIX}_CONFIG_FILE"
CONFIG_FILE_NAME = "webapp.cfg"

DEFAULTS: dict[str, Any] = {
    # "rest" (default, needs only `urllib3`) or "grpc" (needs grpcio and protobuf, imported lazily).
    "TFSERVING_TRANSPORT": "rest",
    "TFSERVING_REST_URL": "http://127.0.0.1:8501",
    "TFSERVING_GRPC_TARGET": "127.0.0.1:8500",
    # The model used when the request names none; also the one /readyz checks.
    "MODEL_NAME": "digits",
    # TF Serving has no list-models call: these names are probed and the ones whose signature takes
    # encoded image bytes are offered in the picker. Empty means just MODEL_NAME.
    "MODEL_CANDIDATES": [],
    "SIGNATURE_NAME": "serving_default",
    # Seconds. Connect: per attempt. Read: budget for all TF Serving calls of one request.
    "CONNECT_TIMEOUT": 2.0,
    "READ_TIMEOUT": 10.0,
    # Retries after a failed connection attempt (never after the request was sent).
    "CONNECT_RETRIES": 2,
    # Seconds the list of image models is reused before TF Serving is asked again.
    "MODEL_LIST_TTL": 30.0,
    # REST only: seconds the serving version of a model is reused before the status is asked again
    # (the version is asked again at once when the server says it is gone, so a rollout fails no request).
    "MODEL_VERSION_TTL": 5.0,
    # Flask's own request body limit in bytes; larger uploads answer 413.
    "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
    # Images with more pixels answer 400 before they are decoded (decompression bombs).
    "MAX_IMAGE_PIXELS": 4096 * 4096,
    # Keep uploads (the design's `predict_images` folder) and list the latest on the page.
    "STORE_UPLOADS": True,
    # Empty means `<instance folder>/predict_images`.
    "UPLOAD_FOLDER": "",
    # At most this many stored predictions are kept; older ones are deleted.
    "UPLOADS_KEPT": 100,
    # Uploads waiting to be written by the worker's storing thread; beyond this many (a disk far slower
    # than the requests) new ones are not stored, and a warning is logged: the answer never waits.
    "UPLOAD_QUEUE_SIZE": 256,
    # Stored uploads older than this many seconds are never listed or served, and are deleted.
    "UPLOADS_MAX_AGE": 24 * 3600,
    "RECENT_SHOWN": 8,
    "TOP_CLASSES": 5,
    # Signs the visitor cookie. Empty means a random key kept in `<instance folder>/secret_key`
    # (made on first start, shared by all workers of the host).
    "SECRET_KEY": "",
    # Send the visitor cookie over HTTPS only (Flask's own key): turn on where the site is HTTPS.
    "SESSION_COOKIE_SECURE": False,
    # Requests to /api/predict per minute per client address (0: no limit), and how many at once.
    # Off by default: behind a proxy every client has the proxy's address until TRUSTED_PROXIES names
    # it (and the proxy sends X-Forwarded-For), and one shared limit would throttle everyone. A limit
    # applies per worker process: with N workers a client gets up to N times it.
    "RATE_LIMIT": 0,
    "RATE_LIMIT_BURST": 20,
    # Loopback clients are not limited (tests, the deploy's checks) unless this is on.
    "RATE_LIMIT_LOOPBACK": False,
    # Peers (HAProxy) whose X-Forwarded-For names the client; from any other peer it is ignored.
    "TRUSTED_PROXIES": [],
}


# The most calls to TF Serving one web request makes: the model's metadata (when the list of image
# models has expired), then over REST its status (when the kept version has expired), the prediction,
# and after a 404 (the version is gone) the status and the prediction again, and once more unpinned.
MODEL_SERVER_CALLS = 6


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the key and the env variable."""


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _to_name_list(value: Any) -> list[str]:
    # Accept a JSON list (TFWEB_MODEL_CANDIDATES='["digits","mnist"]') or "digits,mnist".
    items = [str(item) for item in value] if isinstance(value, list | tuple) else str(value).split(",")
    return [item.strip() for item in items if item.strip()]


def _positive(convert: Callable[[Any], float | int]) -> Callable[[Any], float | int]:
    def checked(value: Any) -> float | int:
        if isinstance(value, bool):
            raise ValueError(f"not a number: {value!r}")
        number = convert(value)
        # `not >` also rejects NaN.
        if not number > 0 or math.isinf(number):
            raise ValueError(f"must be a finite number > 0, got {value!r}")
        return number

    return checked


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    number = int(value)
    if number < 0:
        raise ValueError(f"must be >= 0, got {value!r}")
    return number


def _non_negative_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    number = float(value)
    if number < 0 or math.isnan(number):
        raise ValueError(f"must be >= 0, got {value!r}")
    return number


def _secret_key(value: Any) -> str:
    text = str(value).strip()
    if text and len(text) < 32:
        raise ValueError("must be empty (a key kept in the instance folder) or at least 32 characters")
    return text


def _address_list(value: Any) -> list[str]:
    addresses = _to_name_list(value)
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(f"not an IP address: {address!r}") from None
    return addresses


def _transport(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in {"rest", "grpc"}:
        raise ValueError(f"must be 'rest' or 'grpc', got {value!r}")
    return text


def _rest_url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, got {value!r}")
    return text


def _non_empty_text(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "TFSERVING_TRANSPORT": _transport,
    "TFSERVING_REST_URL": _rest_url,
    "TFSERVING_GRPC_TARGET": _non_empty_text,
    "MODEL_NAME": _non_empty_text,
    "MODEL_CANDIDATES": _to_name_list,
    "SIGNATURE_NAME": _non_empty_text,
    "CONNECT_TIMEOUT": _positive(float),
    "READ_TIMEOUT": _positive(float),
    "CONNECT_RETRIES": _non_negative_int,
    "MODEL_LIST_TTL": _non_negative_float,
    "MODEL_VERSION_TTL": _non_negative_float,
    "MAX_CONTENT_LENGTH": _positive(int),
    "MAX_IMAGE_PIXELS": _positive(int),
    "STORE_UPLOADS": _to_bool,
    "UPLOAD_FOLDER": lambda value: str(value).strip(),
    "UPLOADS_KEPT": _positive(int),
    "UPLOAD_QUEUE_SIZE": _positive(int),
    "UPLOADS_MAX_AGE": _positive(float),
    "RECENT_SHOWN": _non_negative_int,
    "TOP_CLASSES": _positive(int),
    "SECRET_KEY": _secret_key,
    "SESSION_COOKIE_SECURE": _to_bool,
    "RATE_LIMIT": _non_negative_int,
    "RATE_LIMIT_BURST": _positive(int),
    "RATE_LIMIT_LOOPBACK": _to_bool,
    "TRUSTED_PROXIES": _address_list,
}


def normalize(config: Config | dict[str, Any], instance_path: str) -> None:
    """Convert every known key to its type in place, or raise SettingsError naming the bad key."""
    for key, convert in CONVERTERS.items():
        try:
            config[key] = convert(config[key])
        except (TypeError, ValueError) as error:
            raise SettingsError(f"config {key} (env {ENV_PREFIX}_{key}): {error}") from None
    if not config["UPLOAD_FOLDER"]:
        config["UPLOAD_FOLDER"] = os.path.join(instance_path, "predict_images")
    # The default model is always offered, and offered first.
    names = [config["MODEL_NAME"], *config["MODEL_CANDIDATES"]]
    config["MODEL_CANDIDATES"] = list(dict.fromkeys(names))


def default_instance_path() -> str:
    """`TFWEB_INSTANCE_PATH` (the deployment sets it), else `<repo>/instance` when the package runs
    from a checkout (the editable install of `make venv`), else Flask's default for an installed
    package, `<prefix>/var/tfserving_web-instance`."""
    configured = os.environ.get(INSTANCE_PATH_VARIABLE, "").strip()
    if configured:
        return os.path.abspath(configured)
    package_folder = Path(__file__).resolve().parent
    if "site-packages" in package_folder.parts:
        return os.path.join(sys.prefix, "var", f"{package_folder.name}-instance")
    # <repo>/webapp/tfserving_web -> <repo>/instance
    return str(package_folder.parents[1] / "instance")


def config_file_path(instance_path: str) -> str:
    configured = os.environ.get(CONFIG_FILE_VARIABLE, "").strip()
    return os.path.abspath(configured) if configured else os.path.join(instance_path, CONFIG_FILE_NAME)


def load_into(config: Config, instance_path: str, test_config: Mapping[str, Any] | None = None) -> None:
    """Fill `config`: defaults, then the config file (if present), then TFWEB_* env, then test_config."""
    config.from_mapping(DEFAULTS)
    # Optional file: a missing file is normal (env-only deployments); a broken one raises.
    config.from_pyfile(config_file_path(instance_path), silent=True)
    config.from_prefixed_env(ENV_PREFIX)
    if test_config is not None:
        config.from_mapping(test_config)
    normalize(config, instance_path)


def load(test_config: Mapping[str, Any] | None = None, instance_path: str | None = None) -> Config:
    """The resolved settings without building an app (used by tfserving_web.gunicorn_conf)."""
    instance_path = instance_path or default_instance_path()
    config = Config(instance_path)
    load_into(config, instance_path, test_config)
    return config


def longest_model_server_wait(config: Mapping[str, Any]) -> float:
    """Upper bound in seconds one web request can spend waiting on TF Serving.

    At most MODEL_SERVER_CALLS calls may each spend every connection attempt; the read time of all of
    them together is capped by READ_TIMEOUT (see model_server.Deadline).
    Connection retries back off 0.1 s, 0.2 s, ... (urllib3 doubling), counted here as well.
    """
    attempts = config["CONNECT_RETRIES"] + 1
    backoff = sum(0.1 * 2**attempt for attempt in range(config["CONNECT_RETRIES"]))
    per_call_connecting = attempts * config["CONNECT_TIMEOUT"] + backoff
    return MODEL_SERVER_CALLS * per_call_connecting + config["READ_TIMEOUT"]


def gunicorn_timeout(config: Mapping[str, Any]) -> int:
    """gunicorn's worker timeout: comfortably above the longest wait, so a slow TF Serving
    yields a 503/504 answer from the app, never a worker killed by gunicorn."""
    return max(30, math.ceil(longest_model_server_wait(config)) + 10)
