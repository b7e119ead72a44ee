"""testinfra: what site.yml leaves on the box (package, users, files, units, hardening, ports, answers)."""

from __future__ import annotations

import re

import grpc
import pytest
import requests

from tests.deploy.deploy_support import (
    GRPC_TARGET,
    REST_URL,
    SERVER_UNIT,
    WEB_UNIT,
    WEB_URL,
    box_shell,
    main_pid,
)

pytestmark = [pytest.mark.box, pytest.mark.slow, pytest.mark.usefixtures("converged_box")]

# The stack's own units and Debian's units of Prometheus and the node exporter, each under the shared
# hardening drop-in.
OWN_UNITS = (SERVER_UNIT, WEB_UNIT)
UNITS = (*OWN_UNITS, "prometheus.service", "prometheus-node-exporter.service")
# Each service under one name: its unit, its user and group, its config folder.
SERVICES = [
    (SERVER_UNIT, "tfserving", "/etc/tfserving"),
    (WEB_UNIT, "tfserving-web", "/etc/tfserving-web"),
]


def test_the_server_package_matches_the_cpu(host) -> None:
    has_avx = host.run("grep -qw avx /proc/cpuinfo").rc == 0
    wanted, other = ("tensorflow-model-server", "tensorflow-model-server-universal")[:: 1 if has_avx else -1]
    assert host.package(wanted).is_installed
    assert not host.package(other).is_installed
    assert host.file("/usr/bin/tensorflow_model_server").is_file


def test_the_repository_is_signed_by_its_own_keyring(host) -> None:
    sources = host.file("/etc/apt/sources.list.d/tensorflow-serving.sources")
    assert sources.contains("^Signed-By: /etc/apt/keyrings/tensorflow-serving.asc")
    assert not sources.contains("trusted")
    assert host.file("/etc/apt/keyrings/tensorflow-serving.asc").contains("BEGIN PGP PUBLIC KEY BLOCK")
    # apt-key's legacy keyring is not used.
    assert not host.file("/etc/apt/trusted.gpg").exists


@pytest.mark.parametrize(("unit", "user", "config_dir"), SERVICES)
def test_service_users_cannot_log_in_and_may_read_their_config(
    host, unit: str, user: str, config_dir: str
) -> None:
    account = host.user(user)
    assert account.exists
    assert account.shell == "/usr/sbin/nologin"
    assert account.group == user
    folder = host.file(config_dir)
    assert (folder.user, folder.group, folder.mode) == ("root", user, 0o750)


@pytest.mark.parametrize(("unit", "user", "config_dir"), SERVICES)
def test_units_are_enabled_and_run_as_their_user(host, unit: str, user: str, config_dir: str) -> None:
    service = host.service(unit)
    assert service.is_enabled
    assert service.is_running, box_shell(host, f"journalctl -u {unit} -n 30 --no-pager")
    pid = service.systemd_properties["MainPID"]
    assert box_shell(host, f"ps -o user= -p {pid}").strip() == user


def test_web_workers_keep_their_heartbeat_file_in_memory(host) -> None:
    """gunicorn_conf puts the heartbeat file gunicorn touches about twice per request in /dev/shm: it
    must exist and be writable inside the unit's sandbox (PrivateDevices=, PrivateTmp=), or the
    workers fall back to the temporary folder on disk."""
    master = main_pid(host, WEB_UNIT)
    workers = box_shell(host, f"cat /proc/{master}/task/{master}/children").split()
    assert workers, f"tfserving-web's master {master} has no workers"
    for worker in workers:
        # 2>/dev/null; true: a connection (a Prometheus scrape) may close while ls reads the list.
        links = box_shell(host, f"ls -l /proc/{worker}/fd 2>/dev/null; true")
        heartbeat = [line.split(" -> ")[-1] for line in links.splitlines() if "/wgunicorn-" in line]
        assert len(heartbeat) == 1 and heartbeat[0].startswith("/dev/shm/"), (worker, heartbeat)


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_hardened_by_the_shared_drop_in(host, unit: str) -> None:
    drop_in = f"/etc/systemd/system/{unit}.d/hardening.conf"
    assert drop_in in box_shell(host, f"systemctl show --property=DropInPaths --value {unit}")
    properties = host.service(unit).systemd_properties
    assert properties["ProtectSystem"] == "strict"
    assert properties["ProtectHome"] == "yes"
    assert properties["NoNewPrivileges"] == "yes"
    assert properties["PrivateDevices"] == "yes"
    assert properties["PrivateTmp"] == "yes"
    # testinfra drops empty properties, so ask systemctl directly: empty means no capability at all.
    assert box_shell(host, f"systemctl show --property=CapabilityBoundingSet --value {unit}").strip() == ""
    assert properties["ProtectKernelTunables"] == "yes"
    assert properties["RestrictNamespaces"] == "yes"
    assert properties["Restart"] == "on-failure"
    # The stack's own unit files keep only what is the service's own (Debian's are as Debian wrote them).
    if unit in OWN_UNITS:
        assert not host.file(f"/etc/systemd/system/{unit}").contains("^ProtectSystem=")


@pytest.mark.parametrize("unit", UNITS)
def test_exposure_score_is_at_most_two(host, unit: str) -> None:
    report = box_shell(host, f"systemd-analyze security --no-pager {unit}")
    score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", report).group(1))
    print(f"{unit}: exposure {score}")
    assert score <= 2.0, report[-2000:]


TIMESPAN_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}


def timespan_seconds(text: str) -> float:
    """systemctl's human timespans ("5min", "1min 30s", "100ms") in seconds."""
    parts = re.findall(r"([0-9.]+)\s*(us|ms|min|s|h)", text)
    assert parts, f"not a timespan: {text!r}"
    return sum(float(number) * TIMESPAN_UNITS[unit] for number, unit in parts)


def test_start_limits_are_reachable(host) -> None:
    properties = host.service(SERVER_UNIT).systemd_properties
    burst = int(properties["StartLimitBurst"])
    restart = timespan_seconds(properties["RestartUSec"])
    interval = timespan_seconds(properties["StartLimitIntervalUSec"])
    # The burst of restarts fits in the interval, so a crash loop ends in "failed" instead of spinning.
    assert burst * restart < interval, (burst, restart, interval)


def test_config_and_models_are_readable_not_writable_by_the_server(host) -> None:
    config = host.file("/etc/tfserving/models.config")
    assert (config.user, config.group, config.mode) == ("root", "tfserving", 0o640)
    assert config.contains('name: "digits"') and config.contains('name: "half_plus_two"')
    saved_model = host.file("/srv/tfserving/models/digits/1/saved_model.pb")
    assert (saved_model.user, saved_model.group, saved_model.mode) == ("root", "tfserving", 0o640)
    assert host.run("runuser -u tfserving -- test -r /srv/tfserving/models/digits/1/saved_model.pb").rc == 0
    assert host.run("runuser -u tfserving -- test -w /srv/tfserving/models/digits").rc != 0
    env_file = host.file("/etc/tfserving-web/tfserving-web.env")
    assert (env_file.user, env_file.group, env_file.mode) == ("root", "tfserving-web", 0o640)


def test_the_front_end_is_the_wheel_in_its_venv(host) -> None:
    """Installed as a wheel by pip, not copied file by file; gunicorn runs its config module."""
    pip_show = box_shell(host, "/opt/tfserving-web/venv/bin/pip show tfserving-web")
    assert "Location: /opt/tfserving-web/venv/lib/" in pip_show
    wheels = box_shell(host, "ls /opt/tfserving-web/dist").split()
    assert len([name for name in wheels if name.endswith(".whl")]) == 1 and "constraints.txt" in wheels
    assert not host.file("/opt/tfserving-web/app").exists
    assert "--config python:tfserving_web.gunicorn_conf" in box_shell(
        host, f"systemctl show --property=ExecStart --value {WEB_UNIT}"
    )


@pytest.mark.parametrize("port", [8500, 8501, 8080])
def test_ports_listen(host, port: int) -> None:
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_half_plus_two_over_rest(host) -> None:
    answer = requests.post(
        f"{REST_URL}/v1/models/half_plus_two:predict", json={"instances": [1.0, 2.0, 5.0]}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [2.5, 3.0, 4.5]}


def test_half_plus_two_over_grpc(host) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0, 2.0, 5.0], dtype=tf.float32))
    with grpc.insecure_channel(GRPC_TARGET) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [2.5, 3.0, 4.5]


def test_digits_classified_through_the_web_front_end(host, digit_pngs) -> None:
    correct = 0
    for png, label in digit_pngs:
        answer = requests.post(
            f"{WEB_URL}/api/predict", files={"image": ("digit.png", png, "image/png")}, timeout=20
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "digits" and len(body["probabilities"]) == 10
        correct += body["class_id"] == label
    print(f"web front end: {correct}/{len(digit_pngs)} held-out digits right")
    assert correct / len(digit_pngs) >= 0.95


def test_a_page_upload_is_stored_and_listed_back_from_inside_the_sandbox(host, digit_pngs) -> None:
    """The page's upload goes through the writer process into the SQLite database in the unit's state
    folder (ProtectSystem=strict, the system-call filter), and the page lists and serves it back."""
    png, _ = digit_pngs[0]
    with requests.Session() as visitor:
        answer = visitor.post(f"{WEB_URL}/", files={"image": ("digit.png", png, "image/png")}, timeout=20)
        assert answer.status_code == 200, answer.text[-500:]
        page = visitor.get(f"{WEB_URL}/", timeout=20).text
        thumbnails = re.findall(r'src="(/uploads/[^"]+\.thumb\.png)"', page)
        assert thumbnails, box_shell(host, f"journalctl -u {WEB_UNIT} -n 30 --no-pager")
        thumbnail = visitor.get(f"{WEB_URL}{thumbnails[0]}", timeout=20)
        assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\x89PNG")
    database = host.file("/var/lib/tfserving-web/predict_images/uploads.sqlite3")
    assert database.is_file and database.user == "tfserving-web"


def test_web_front_end_is_ready(host) -> None:
    assert requests.get(f"{WEB_URL}/readyz", timeout=10).status_code == 200
