"""Cold start and rollout time, on a stand-in of the benchmark's own (a new version has to be published
into the model's base path, which only a server we started lets us do).

Two models are served from copies of the same SavedModel: one whose versions carry warmup records
(`assets.extra/tf_serving_warmup_requests`, replayed by the server while loading) and one without.
Each trial publishes a new version the way a rollout does (copy beside, then one rename), polls the
status until that version is AVAILABLE (the rollout time, which includes the server's 1 s file
system poll), and sends the first request to it that same instant (the cold latency), then a few more
(the warm latency). The two kinds alternate, so neither always goes first.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfstack_bench.stack import start_standin

WARMUP_FOLDER = "assets.extra"
POLL_INTERVAL_SECONDS = 0.005
ROLLOUT_TIMEOUT_SECONDS = 120.0
WARM_REQUESTS = 20
KINDS = {"with warmup records": "cold_warmup", "without warmup records": "cold_no_warmup"}


@dataclass(frozen=True)
class Trial:
    kind: str
    version: int
    rollout_s: float
    first_ms: float
    warm_p50_ms: float


def publish(source: Path, base: Path, version: int, keep_warmup: bool) -> None:
    """Copy the SavedModel under a name the server ignores, then rename it into place at once."""
    staging = base / f".staging-{version}"
    ignore = None if keep_warmup else shutil.ignore_patterns(WARMUP_FOLDER)
    shutil.copytree(source, staging, ignore=ignore)
    staging.rename(base / str(version))


class _RestSession:
    """One kept-alive connection for status polls and predictions, so no connection setup is timed."""

    def __init__(self, rest_url: str) -> None:
        host, port = rest_url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=60)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
        self.connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, {}

    def available(self, model: str, version: int) -> bool:
        status, body = self.request("GET", f"/v1/models/{model}")
        return status == 200 and any(
            int(entry["version"]) == version and entry.get("state") == "AVAILABLE"
            for entry in body.get("model_version_status", [])
        )

    def timed_predict(self, model: str, version: int, body: bytes) -> float:
        started = time.perf_counter()
        status, answer = self.request("POST", f"/v1/models/{model}/versions/{version}:predict", body)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if status != 200 or "predictions" not in answer:
            raise RuntimeError(f"prediction from version {version} of {model} failed: HTTP {status} {answer}")
        return elapsed_ms

    def close(self) -> None:
        self.connection.close()


def _trial(
    session: _RestSession, source: Path, base: Path, kind: str, model: str, version: int, body: bytes
) -> Trial:
    publish(source, base, version, keep_warmup=kind == "with warmup records")
    published = time.perf_counter()
    while not session.available(model, version):
        if time.perf_counter() - published > ROLLOUT_TIMEOUT_SECONDS:
            raise RuntimeError(
                f"version {version} of {model} not AVAILABLE after {ROLLOUT_TIMEOUT_SECONDS:g} s"
            )
        time.sleep(POLL_INTERVAL_SECONDS)
    rollout_s = time.perf_counter() - published
    first_ms = session.timed_predict(model, version, body)
    warm = [session.timed_predict(model, version, body) for _ in range(WARM_REQUESTS)]
    return Trial(kind, version, rollout_s, first_ms, statistics.median(warm))


def measure(
    workdir: Path, source_version: Path, png: bytes, repeats: int, progress: Callable[[str], None] = print
) -> list[Trial]:
    """`repeats` rollouts of each kind, alternating, on a stand-in started for this."""
    bases = {kind: workdir / model for kind, model in KINDS.items()}
    for kind, base in bases.items():
        base.mkdir(parents=True)
        publish(source_version, base, 1, keep_warmup=kind == "with warmup records")
    progress("cold start: starting a stand-in of its own (file system poll every 1 s)")
    standin = start_standin(
        workdir,
        {KINDS[kind]: base for kind, base in bases.items()},
        flags=("--file_system_poll_wait_seconds=1",),
        name="coldstart-stand-in",
    )
    body = json.dumps(
        {"signature_name": "serving_default", "instances": [{"b64": base64.b64encode(png).decode()}]}
    ).encode()
    session = _RestSession(standin.rest_url)
    trials = []
    try:
        for repeat in range(repeats):
            kinds = list(KINDS) if repeat % 2 == 0 else list(reversed(KINDS))
            for kind in kinds:
                trial = _trial(session, source_version, bases[kind], kind, KINDS[kind], repeat + 2, body)
                trials.append(trial)
                progress(
                    f"cold start {len(trials)}/{repeats * len(KINDS)}, {kind}: AVAILABLE "
                    f"{trial.rollout_s:.2f} s after publishing, first request {trial.first_ms:.1f} ms, "
                    f"then {trial.warm_p50_ms:.1f} ms"
                )
    finally:
        session.close()
        standin.process.stop()
    return trials
