"""What group_vars/ derive from an inventory, by Ansible's own templating run for real (`ansible -m debug`):
what Prometheus scrapes (every host's node exporter, each service on the hosts of its group, a port a
host overrides, no job for an empty group), who may reach TF Serving behind a load balancer, and whose
X-Forwarded-For the web front end believes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.paths import REPO_ROOT, VENV_BIN

FLEET = """
[mirror]
mirror ansible_host=10.213.0.1
[loadbalancer]
lb ansible_host=10.213.0.10
[tfserving]
tfs1 ansible_host=10.213.0.11
tfs2 ansible_host=10.213.0.12 tensorflow_serving_rest_port=9501
[webapp]
web1 ansible_host=10.213.0.21
[monitoring]
lb
"""

ONE_BOX = """
[tfserving]
box ansible_host=127.0.0.1
[webapp]
box
[monitoring]
box
"""


def derived(variable: str, host: str, inventory: str, tmp_path: Path) -> object:
    """`variable` as `host` of `inventory` sees it, with this repository's group_vars/."""
    if not (tmp_path / "inventory.ini").exists():
        (tmp_path / "inventory.ini").write_text(inventory)
        (tmp_path / "group_vars").symlink_to(REPO_ROOT / "group_vars")
    completed = subprocess.run(
        [str(VENV_BIN / "ansible"), "-i", str(tmp_path / "inventory.ini"), host,
         "-m", "ansible.builtin.debug", "-a", f"var={variable}", "--one-line"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(completed.stdout.split("=>", 1)[1])[variable]


def scrape_jobs(inventory: str, tmp_path: Path) -> dict[str, dict]:
    """prometheus_scrape_jobs of the first monitoring host, by job name."""
    return {
        job["job_name"]: job
        for job in derived("prometheus_scrape_jobs", "monitoring[0]", inventory, tmp_path)
    }


def targets(job: dict) -> dict[str, str]:
    return {target["instance"]: target["address"] for target in job["targets"]}


def test_a_fleet_is_scraped_by_group_with_each_hosts_own_port(tmp_path: Path) -> None:
    jobs = scrape_jobs(FLEET, tmp_path)
    assert sorted(jobs) == ["haproxy", "node", "prometheus", "tfserving", "tfserving-web"]
    assert targets(jobs["tfserving"]) == {"tfs1": "10.213.0.11:8501", "tfs2": "10.213.0.12:9501"}
    assert jobs["tfserving"]["metrics_path"] == "/monitoring/prometheus/metrics"
    assert targets(jobs["haproxy"]) == {"lb": "10.213.0.10:8405"}
    assert targets(jobs["tfserving-web"]) == {"web1": "10.213.0.21:8080"}
    assert targets(jobs["prometheus"]) == {"lb": "10.213.0.10:9090"}
    assert set(targets(jobs["node"])) == {"mirror", "lb", "tfs1", "tfs2", "web1"}


def test_one_box_gets_no_job_for_an_empty_group(tmp_path: Path) -> None:
    jobs = scrape_jobs(ONE_BOX, tmp_path)
    assert sorted(jobs) == ["node", "prometheus", "tfserving", "tfserving-web"]
    assert targets(jobs["node"]) == {"box": "127.0.0.1:9100"}


def test_behind_a_load_balancer_only_it_the_web_hosts_and_prometheus_reach_tf_serving(tmp_path: Path) -> None:
    allowed = derived("tensorflow_serving_ip_address_allow", "tfs1", FLEET, tmp_path)
    assert sorted(allowed) == ["10.213.0.10", "10.213.0.21"]  # lb once, though in two groups


def test_the_web_front_end_believes_only_the_load_balancers_forwarded_for(tmp_path: Path) -> None:
    assert derived("webapp_trusted_proxies", "web1", FLEET, tmp_path) == ["10.213.0.10"]


def test_one_box_has_no_fence_and_no_trusted_proxy(tmp_path: Path) -> None:
    assert derived("tensorflow_serving_ip_address_allow", "box", ONE_BOX, tmp_path) == []
    assert derived("webapp_trusted_proxies", "box", ONE_BOX, tmp_path) == []
