"""The app under real gunicorn with the deployment's config module (tfserving_web.gunicorn_conf),
against the stand-in."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.webapp.webtest_support import Digit, gunicorn_env, gunicorn_server, require_digits

pytestmark = pytest.mark.slow

# The reload test's senders stop when told, and after this many requests each at the latest.
MAX_REQUESTS_PER_SENDER = 2000


def predict(url: str, png: bytes, timeout: float = 30) -> requests.Response:
    files = {"image": ("digit.png", png, "image/png")}
    return requests.post(f"{url}/api/predict", files=files, timeout=timeout)


def test_prediction_through_gunicorn(tfserving, digits: list[Digit], tmp_path: Path) -> None:
    require_digits(tfserving)
    env = {"TFWEB_TFSERVING_REST_URL": tfserving.rest_url, "TFWEB_INSTANCE_PATH": str(tmp_path / "state")}
    log = tmp_path / "gunicorn.log"
    with gunicorn_server(env, log, workers=2) as server:
        url = server.url
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
        sample = digits[:30]
        answers = []
        wall = []
        for digit in sample:
            started = time.perf_counter()
            response = predict(url, digit.png)
            wall.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        correct = sum(
            answer["class_id"] == digit.label for answer, digit in zip(answers, sample, strict=True)
        )
        assert correct >= 0.85 * len(sample)
        # JSON body through gunicorn as well.
        as_json = requests.post(
            f"{url}/api/predict", json={"image_b64": base64.b64encode(sample[0].png).decode()}, timeout=30
        )
        assert as_json.json()["class_id"] == answers[0]["class_id"]
        # Over the default 4 MiB limit: gunicorn passes Flask's 413 back, the client sees it cleanly.
        too_big = requests.post(
            f"{url}/api/predict", files={"image": ("big.png", os.urandom(5 * 1024 * 1024))}, timeout=30
        )
        assert too_big.status_code == 413, too_big.text
        page = requests.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and "Recent predictions" in page.text

        with ThreadPoolExecutor(max_workers=8) as pool:
            started = time.perf_counter()
            statuses = list(pool.map(lambda digit: predict(url, digit.png).status_code, digits[:80]))
            elapsed = time.perf_counter() - started
        assert statuses == [200] * 80
    print(
        f"\ngunicorn (2 workers x 4 threads) -> stand-in REST: median {statistics.median(wall):.1f} ms, "
        f"max {max(wall):.1f} ms per sequential request (server-side latency_ms median "
        f"{statistics.median(answer['latency_ms'] for answer in answers):.1f} ms); "
        f"8 concurrent clients: {80 / elapsed:.1f} requests/s; accuracy {correct}/{len(sample)}"
    )
    text = log.read_text()
    assert '"POST /api/predict HTTP/1.1" 200' in text  # access log on stdout


def heartbeat_files(pid: int) -> list[str]:
    """The files gunicorn's heartbeat touches in a worker (made by WorkerTmp and unlinked at once)."""
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a connection closed meanwhile
            targets.append(os.readlink(fd))
    return [target for target in targets if "/wgunicorn-" in target]


def test_workers_keep_their_heartbeat_file_in_memory(tfserving, tmp_path: Path) -> None:
    """Each worker touches its heartbeat file about twice per request: in memory (/dev/shm), not in the
    temporary folder on disk, where a stalled disk would stall the worker (see gunicorn_conf)."""
    env = gunicorn_env(tfserving.rest_url, tmp_path)
    with gunicorn_server(env, tmp_path / "gunicorn.log") as server:
        (worker,) = server.worker_pids()
        paths = heartbeat_files(worker)
    assert len(paths) == 1 and paths[0].startswith("/dev/shm/wgunicorn-"), paths


def test_paused_model_server_gives_504_and_no_worker_is_killed(
    tfserving, start_standin, digits: list[Digit], tmp_path: Path
) -> None:
    require_digits(tfserving)
    server = start_standin(models={"digits": tfserving.models["digits"]})
    env = {
        "TFWEB_TFSERVING_REST_URL": server.rest_url,
        "TFWEB_INSTANCE_PATH": str(tmp_path / "state"),
        "TFWEB_READ_TIMEOUT": "2",
    }
    log = tmp_path / "gunicorn.log"
    with gunicorn_server(env, log, workers=1) as gunicorn:
        url = gunicorn.url
        assert predict(url, digits[0].png).status_code == 200
        server.pause()
        try:
            started = time.monotonic()
            statuses = [predict(url, digit.png, timeout=60).status_code for digit in digits[:3]]
            elapsed = time.monotonic() - started
            assert statuses == [504, 504, 504], log.read_text()[-3000:]
        finally:
            server.resume()
        assert predict(url, digits[0].png).status_code == 200
    print(f"\npaused model server: 3 requests answered 504 in {elapsed:.1f} s under gunicorn")
    text = log.read_text()
    assert "WORKER TIMEOUT" not in text
    assert "Traceback" not in text


def test_graceful_reload_drops_no_request(tfserving, digits: list[Digit], tmp_path: Path) -> None:
    """gunicorn HUP (what `systemctl reload` sends) while clients keep sending predictions."""
    require_digits(tfserving)
    env = {"TFWEB_TFSERVING_REST_URL": tfserving.rest_url, "TFWEB_INSTANCE_PATH": str(tmp_path / "state")}
    log = tmp_path / "gunicorn.log"
    failures: list[str] = []
    sent = 0
    stop = threading.Event()

    def keep_sending(url: str) -> None:
        nonlocal sent
        session = requests.Session()
        for _ in range(MAX_REQUESTS_PER_SENDER):
            if stop.is_set():
                break
            try:
                response = session.post(
                    f"{url}/api/predict", files={"image": ("d.png", digits[0].png)}, timeout=30
                )
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
            except requests.RequestException as error:
                failures.append(repr(error))
            sent += 1

    with gunicorn_server(env, log, workers=2) as server:
        threads = [threading.Thread(target=keep_sending, args=(server.url,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(2):
                time.sleep(1.5)
                os.kill(server.pid, signal.SIGHUP)
            time.sleep(3)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
    print(f"\ngraceful reload x2 under load: {sent} requests, {len(failures)} failed")
    assert sent > 10
    assert failures == []
    assert log.read_text().count("Hang up") >= 2
