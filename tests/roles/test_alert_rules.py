"""The stack's alert rules and scrape jobs, checked on this machine in seconds.

The rules are rendered by the prometheus role's own task (tasks_from: rules), so the file tested is the
one a monitoring host gets, with the role's default thresholds and durations; `promtool test rules`
then plays each fault as a series and checks which alert fires, when, and with what text.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT, VENV_BIN
from tests.support.promtool import promtool

RULES_TESTS = Path(__file__).with_name("alert_rules.test.yml")
RENDER_PLAYBOOK = """
- name: Render the alert rules
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Write the rules as the role does
      ansible.builtin.import_role:
        name: prometheus
        tasks_from: rules
"""


@pytest.fixture(scope="module")
def rendered_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rules")
    (folder / "render.yml").write_text(RENDER_PLAYBOOK)
    env = {
        **os.environ,
        "PATH": f"{promtool().parent}{os.pathsep}{os.environ['PATH']}",
        "ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"),
    }
    # The handler the template notifies must not reload a Prometheus of this machine.
    extra = {
        "_prometheus_rules_dir": str(folder),
        "prometheus_service_state": "stopped",
        "ansible_python_interpreter": sys.executable,
    }
    completed = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(folder / "render.yml"),
         "-e", json.dumps(extra)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    shutil.copy(RULES_TESTS, folder / RULES_TESTS.name)
    return folder


def test_the_rules_pass_promtool_check(rendered_rules: Path) -> None:
    completed = subprocess.run(
        [str(promtool()), "check", "rules", str(rendered_rules / "tfserving-stack.rules.yml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "SUCCESS: 9 rules found" in completed.stdout


def test_each_alert_fires_on_its_fault_and_only_then(rendered_rules: Path) -> None:
    completed = subprocess.run(
        [str(promtool()), "test", "rules", RULES_TESTS.name],
        cwd=rendered_rules, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
