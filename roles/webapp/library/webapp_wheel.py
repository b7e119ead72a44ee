#!/usr/bin/python
"""Ansible module: build a reproducible wheel of a Python distribution, where it runs (the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: webapp_wheel
short_description: Build a reproducible wheel of a Python distribution on the controller
description:
  - Runs C(python -m pip wheel --no-deps) on a clean copy of O(source), so setuptools' C(build/) and
    C(*.egg-info) never land in the source tree and files left in an old C(build/) never reach the wheel.
  - The wheel's bytes depend on its content only (zip times from E(SOURCE_DATE_EPOCH), file modes from a
    fixed umask), so building the same code twice gives the same file and the same O(sha256): a copy to
    the host changes only when the code does.
  - Changes nothing on managed hosts; O(dest) is a build folder on the controller.
options:
  source:
    description: Folder of the distribution (holds C(pyproject.toml)).
    type: path
    required: true
  dest:
    description: Folder the wheel is put in; created when missing.
    type: path
    required: true
  python:
    description: Python whose pip builds the wheel, normally C(ansible_playbook_python).
    type: path
    required: true
"""

RETURN = r"""
path:
  description: The wheel in O(dest).
  type: str
  returned: success
filename:
  description: Its file name, e.g. C(tfserving_web-0.3.0-py3-none-any.whl).
  type: str
  returned: success
name:
  description: The distribution name as the file name spells it.
  type: str
  returned: success
version:
  description: The distribution version.
  type: str
  returned: success
sha256:
  description: SHA-256 of the wheel file.
  type: str
  returned: success
"""

import hashlib  # noqa: E402  (Ansible modules keep their documentation first)
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

# 1980-01-01, the earliest time a zip entry can carry.
REPRODUCIBLE_EPOCH = "315532800"
# What a build or a test run leaves in a source folder, none of which belongs in a wheel.
NOT_SOURCE = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".*")


def build(module: AnsibleModule, source: Path, python: str, work: Path) -> Path:
    """The wheel of a clean copy of `source`, built in `work`."""
    copy = work / "source"
    shutil.copytree(source, copy, ignore=NOT_SOURCE, copy_function=shutil.copyfile)
    out = work / "wheels"
    rc, stdout, stderr = module.run_command(
        [python, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(copy)],
        environ_update={"SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    wheels = sorted(out.glob("*.whl")) if rc == 0 else []
    if len(wheels) != 1:
        module.fail_json(msg=f"pip wheel {source} failed (exit {rc}): {(stderr or stdout).strip()[-2000:]}")
    return wheels[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    # Three required paths (see DOCUMENTATION).
    paths = ("source", "dest", "python")
    module = AnsibleModule(
        argument_spec={name: {"type": "path", "required": True} for name in paths}, supports_check_mode=True
    )
    source = Path(module.params["source"])
    dest = Path(module.params["dest"])
    if not (source / "pyproject.toml").is_file():
        module.fail_json(msg=f"{source} is not a Python distribution (no pyproject.toml)")
    # The modes of the files in the wheel follow the umask of the build.
    os.umask(0o022)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=dest) as work:
        built = build(module, source, module.params["python"], Path(work))
        digest = sha256(built)
        target = dest / built.name
        # Same content, same bytes: leave an identical wheel alone; else replace it atomically, which is
        # also safe against a parallel build of the same code.
        if not target.is_file() or sha256(target) != digest:
            os.replace(built, target)
    name, version = target.name.split("-")[:2]
    module.exit_json(
        changed=False, path=str(target), filename=target.name, name=name, version=version, sha256=digest
    )


if __name__ == "__main__":
    main()
