"""Static checks of the roles and playbooks: lint and syntax clean; every variable described once in
meta/argument_specs.yml with its value in defaults/main.yml; READMEs generated from both and current."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.support.paths import REPO_ROOT, VENV_BIN

ROLES = sorted(path.name for path in (REPO_ROOT / "roles").iterdir() if (path / "tasks").is_dir())
SERVICE_ROLES = ["tensorflow_serving", "webapp"]


def load(role: str, *parts: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "roles" / role).joinpath(*parts).read_text()) or {}


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_each_service_has_a_role_and_they_share_service_common() -> None:
    assert {"service_common", *SERVICE_ROLES} <= set(ROLES)


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_defaults_hold_a_value_for_every_optional_variable_of_main(role: str) -> None:
    defaults = load(role, "defaults", "main.yml")
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    optional = {name for name, spec in options.items() if not spec.get("required")}
    assert set(defaults) == optional, {
        "in defaults only": sorted(set(defaults) - optional),
        "optional in argument_specs, no value in defaults": sorted(optional - set(defaults)),
    }
    assert all(name.startswith(f"{role}_") for name in options), "role variables carry the role's prefix"


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_describe_every_option_and_leave_values_to_defaults(role: str) -> None:
    for entry_point, spec in load(role, "meta", "argument_specs.yml")["argument_specs"].items():
        for name, option in spec["options"].items():
            assert option.get("description"), f"{role} {entry_point}: {name} has no description"
            assert "default" not in option, (
                f"{role} {entry_point}: {name}'s value belongs in defaults/main.yml"
            )
            assert "type" in option, f"{role} {entry_point}: {name} has no type"


def test_every_tasks_from_in_the_playbooks_has_an_entry_point() -> None:
    specs = load("tensorflow_serving", "meta", "argument_specs.yml")["argument_specs"]
    text = (REPO_ROOT / "playbooks" / "models.yml").read_text()
    assert "tasks_from: rollout\n" in text
    assert "rollout" in specs


def test_service_common_parts_each_have_an_entry_point() -> None:
    """Each part of service_common (a task file other than main) has an argument_specs entry point, so
    its inputs are checked, and each part a service role imports exists."""
    entry_points = set(load("service_common", "meta", "argument_specs.yml")["argument_specs"])
    parts = {path.stem for path in (REPO_ROOT / "roles/service_common/tasks").glob("*.yml")} - {"main"}
    assert parts == entry_points
    used = set()
    for role in SERVICE_ROLES:
        for path in (REPO_ROOT / "roles" / role / "tasks").glob("*.yml"):
            for task in yaml.safe_load(path.read_text()) or []:
                call = task.get("ansible.builtin.import_role") or {}
                if call.get("name") == "service_common":
                    used.add(call["tasks_from"])
    assert {"apt_cache", "user", "hardening", "health_gate"} <= used <= parts


def test_role_readmes_are_generated_from_the_current_specs() -> None:
    result = run(str(VENV_BIN / "python"), "scripts/role_docs.py", "--check")
    assert result.returncode == 0, f"run `make docs`:\n{result.stdout}{result.stderr}"


def test_ansible_lint_production_profile_is_clean() -> None:
    result = run(str(VENV_BIN / "ansible-lint"), "--profile", "production", "--nocolor")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_yamllint_is_clean() -> None:
    result = run(str(VENV_BIN / "yamllint"), "--strict", ".")
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.parametrize(
    "playbook", ["site.yml", "playbooks/tfserving.yml", "playbooks/webapp.yml", "playbooks/models.yml"]
)
def test_playbook_syntax(playbook: str) -> None:
    result = run(str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory.ini", playbook)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
