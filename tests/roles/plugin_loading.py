"""Loading a role's plugins and modules as they are: by file path, since roles are not Python packages."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.paths import REPO_ROOT


def role_file(role: str, *parts: str) -> Path:
    return REPO_ROOT.joinpath("roles", role, *parts)


def load_plugin(role: str, kind: str, name: str) -> ModuleType:
    """roles/<role>/<kind>/<name>.py imported under a private module name."""
    path = role_file(role, kind, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_role_{role}_{name}", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_module(role: str, name: str, args: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Runs roles/<role>/library/<name>.py for real, as Ansible's own module debugging does
    (`python module.py args.json`), and returns the JSON it answers, `failed` included."""
    args_file = tmp_path / f"{name}-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    completed = subprocess.run(
        [sys.executable, str(role_file(role, "library", f"{name}.py")), str(args_file)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.stdout.strip(), f"{name} printed nothing; stderr:\n{completed.stderr}"
    return json.loads(completed.stdout)
