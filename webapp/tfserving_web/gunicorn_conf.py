"""gunicorn settings for the web front end: `gunicorn -c python:tfserving_web.gunicorn_conf`.

Everything the deployment varies comes from the environment (systemd EnvironmentFile):
  TFWEB_BIND     listen address, default 0.0.0.0:8080
  TFWEB_WORKERS  worker processes; unset or 0: one per core this process may run on
  TFWEB_THREADS  threads per worker; unset or 0: 4 (a request mostly waits on TF Serving)
  TFWEB_ACCESS_LOG  a line per request on stdout, default true
plus the app's own TFWEB_* settings, read here too so the worker timeout follows the client timeouts.

Workers x threads were chosen with tfstack-bench (gRPC transport, stand-in on the same machine,
requests per second with 8 / 16 concurrent clients, 2026-12-01):
  2 cores: 1x8 568/527, 2x4 550/587, 2x8 476/456, 4x2 441/435, 2x2 409/476
  1 core (taskset): 1x4 386/368, 1x8 395/387, 1x2 246/237, 2x4 322/316
Again on 2 cores after this round's changes (bench/results/2026-12-01-shapes/, a busy machine, load
average 2-9), requests per second with 8 / 16 clients:
  gRPC: 1x4 401/392, 2x4 431/484, 2x8 404/466, 4x2 404/447
  REST: 1x4 324/269, 2x4 333/315, 2x8 362/337, 4x2 252/284
and on 1 core (taskset, bench/results/2026-12-01-shapes-1core/), gRPC: 1x4 361/404, 1x8 370/377, 2x4 363/349.
More workers than cores lose (each one's GIL-bound Python competes with TF Serving for the cores),
fewer than 4 threads leave a worker idle while its requests wait on TF Serving, and 8 threads gain
nothing over 4. Hence one worker per core, 4 threads each.
Runs in the foreground (never daemon mode) so systemd supervises it; with Type=notify gunicorn tells
systemd it is ready through NOTIFY_SOCKET by itself.
"""

import os
import shutil
import sys
import tempfile

from tfserving_web import metrics, settings

try:
    _config = settings.load()
except settings.SettingsError as error:
    # One line for the journal instead of gunicorn's traceback of this file.
    sys.exit(f"tfserving-web: {error}")

wsgi_app = "tfserving_web:create_app()"
# Several addresses may be given, comma-separated.
bind = [address.strip() for address in os.environ.get("TFWEB_BIND", "0.0.0.0:8080").split(",")]
bind = [address for address in bind if address]


def _count(name: str, default: int) -> int:
    """A whole number from the environment; unset, empty or 0 means `default`."""
    text = os.environ.get(name, "").strip() or "0"
    if not text.isdigit():
        sys.exit(f"tfserving-web: {name} must be a whole number >= 0 (0: the default), got {text!r}")
    return int(text) or default


def _switch(name: str, default: bool) -> bool:
    text = os.environ.get(name, "").strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    if text:
        sys.exit(f"tfserving-web: {name} must be true or false, got {text!r}")
    return default


workers = _count("TFWEB_WORKERS", len(os.sched_getaffinity(0)))
worker_class = "gthread"
threads = _count("TFWEB_THREADS", 4)
# Longer than the longest wait on TF Serving (see settings.gunicorn_timeout), so a slow or stopped
# model server yields a 503/504 from the app instead of a worker killed mid-request.
timeout = settings.gunicorn_timeout(_config)
graceful_timeout = timeout
keepalive = 5
# gunicorn's heartbeat: each worker touches (os.utime) a file in this folder at every turn of its loop,
# about twice per request, and the master kills a worker whose file goes stale. The default, the
# temporary folder, is on disk on Debian and Ubuntu (PrivateTmp= keeps it there), so a stalled disk
# would stall every worker's loop with it; in memory it cannot, as gunicorn's FAQ advises. Not a speed
# change: in three interleaved runs of tfstack-bench --web-variant
# 'heartbeat-on-disk:GUNICORN_CMD_ARGS=--worker-tmp-dir=/tmp' the two differed both ways, within noise.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# journald collects stdout/stderr under systemd. TFWEB_ACCESS_LOG=false (the webapp role's default)
# drops gunicorn's line per request: about 65 µs of the worker's Python for each prediction (py-spy,
# 8% of its time holding the GIL) and a journal entry each; /metrics counts requests by endpoint and
# status either way.
accesslog = "-" if _switch("TFWEB_ACCESS_LOG", True) else None
errorlog = "-"
loglevel = os.environ.get("TFWEB_LOG_LEVEL", "info")
proc_name = "tfserving-web"
# Answer forwarded headers only from a proxy on the same host.
forwarded_allow_ips = "127.0.0.1,::1"

# Prometheus' multiprocess folder (see tfserving_web.metrics): the systemd unit names its runtime
# directory; otherwise one of this master's own under the temporary folder, removed when it exits.
# Through gunicorn's raw_env, which the master puts in its environment when it starts, so every
# worker inherits it before it first imports prometheus_client, while merely importing this module
# (tfstack-bench reads workers and threads from it) changes no process's environment.
_own_metrics_dir = os.path.join(tempfile.gettempdir(), f"tfserving-web-metrics-{os.getpid()}")
raw_env = (
    []
    if os.environ.get(metrics.MULTIPROC_DIR_VARIABLE)
    else [f"{metrics.MULTIPROC_DIR_VARIABLE}={_own_metrics_dir}"]
)


def on_starting(server: object) -> None:
    """Once per start (not on HUP): an empty folder, so counts start from 0 with the service."""
    metrics.prepare_multiprocess_dir(os.environ[metrics.MULTIPROC_DIR_VARIABLE])


def child_exit(server: object, worker: object) -> None:
    metrics.mark_worker_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    if os.environ.get(metrics.MULTIPROC_DIR_VARIABLE) == _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
