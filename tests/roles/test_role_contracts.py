"""Static checks of the roles and playbooks: lint clean, syntax clean, and every default typed in
meta/argument_specs.yml and documented in the role's README (so the three never drift apart)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ROLES = sorted(path.name for path in (REPO_ROOT / "roles").iterdir() if (path / "tasks").is_dir())


def role_file(role: str, *parts: str) -> Path:
    return REPO_ROOT / "roles" / role / Path(*parts)


def test_there_is_a_role_per_service() -> None:
    assert ROLES == ["tensorflow_serving", "webapp"]


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_cover_every_default(role: str) -> None:
    defaults = yaml.safe_load(role_file(role, "defaults", "main.yml").read_text())
    specs = yaml.safe_load(role_file(role, "meta", "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options), {
        "in defaults only": sorted(set(defaults) - set(options)),
        "in argument_specs only": sorted(set(options) - set(defaults)),
    }
    mismatched = {
        name: (defaults[name], options[name].get("default"))
        for name in defaults
        if defaults[name] != options[name].get("default")
    }
    assert not mismatched, f"default differs from argument_specs (defaults, spec): {mismatched}"
    assert all(name.startswith(f"{role}_") for name in defaults), "role variables carry the role's prefix"


@pytest.mark.parametrize("role", ROLES)
def test_readme_documents_every_variable(role: str) -> None:
    readme = role_file(role, "README.md").read_text()
    defaults = yaml.safe_load(role_file(role, "defaults", "main.yml").read_text())
    missing = [name for name in defaults if not re.search(rf"\b{re.escape(name)}\b", readme)]
    assert not missing, f"roles/{role}/README.md does not mention {missing}"


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_ansible_lint_production_profile_is_clean() -> None:
    result = run(str(VENV_BIN / "ansible-lint"), "--profile", "production", "--nocolor")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_yamllint_is_clean() -> None:
    result = run(str(VENV_BIN / "yamllint"), "--strict", ".")
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.parametrize("playbook", ["site.yml", "playbooks/models.yml"])
def test_playbook_syntax(playbook: str) -> None:
    result = run(str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory.ini", playbook)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
