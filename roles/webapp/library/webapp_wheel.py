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
  - A rerun with the same clean copy and the same O(python) reuses the wheel it built last time (its digest
    is recorded in O(dest)/.source.sha256), so a converge with unchanged code skips pip's build (3-4 s).
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
built:
  description: Whether pip built the wheel in this run (false when the same source's wheel was reused).
  type: bool
  returned: success
"""

import hashlib  # noqa: E402  (Ansible modules keep their documentation first)
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

# 1980-01-01, the earliest time a zip entry can carry.
REPRODUCIBLE_EPOCH = "315532800"
# What a build or a test run leaves in a source folder, none of which belongs in a wheel.
NOT_SOURCE = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".*")
# In dest: which clean copy (and Python) the wheel beside it was built from.
RECORD = ".source.sha256"


def clean_copy(source: Path, work: Path) -> Path:
    copy = work / "source"
    shutil.copytree(source, copy, ignore=NOT_SOURCE, copy_function=shutil.copyfile)
    return copy


def source_digest(copy: Path, python: str) -> str:
    """Of the clean copy's file names and bytes, and of the Python that builds it."""
    digest = hashlib.sha256(python.encode())
    for path in sorted(path for path in copy.rglob("*") if path.is_file()):
        digest.update(str(path.relative_to(copy)).encode() + b"\0" + sha256(path).encode())
    return digest.hexdigest()


def reusable_wheel(dest: Path, digest: str) -> tuple[Path, str] | None:
    """The wheel in dest built from the same source and its SHA-256, if it is still there unchanged."""
    try:
        record = json.loads((dest / RECORD).read_text())
        wheel = dest / record["wheel"]
        if record["source"] == digest and sha256(wheel) == record["sha256"]:
            return wheel, record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def build(module: AnsibleModule, source: Path, copy: Path, python: str, work: Path) -> Path:
    """The wheel of `copy`, the clean copy of `source`, built in `work`."""
    out = work / "wheels"
    rc, stdout, stderr = module.run_command(
        [python, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(copy)],
        environ_update={"SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    wheels = sorted(out.glob("*.whl")) if rc == 0 else []
    if len(wheels) != 1:
        module.fail_json(msg=f"pip wheel {source} failed (exit {rc}): {(stderr or stdout).strip()[-2000:]}")
    return wheels[0]


def wheel_of(module: AnsibleModule, source: Path, dest: Path, python: str) -> tuple[Path, str, bool]:
    """The wheel of `source` in `dest`, its SHA-256, and whether it was built now (else reused)."""
    with tempfile.TemporaryDirectory(prefix=".build-", dir=dest) as work:
        copy = clean_copy(source, Path(work))
        source_sha256 = source_digest(copy, python)
        reused = reusable_wheel(dest, source_sha256)
        if reused is not None:
            return *reused, False
        wheel = build(module, source, copy, python, Path(work))
        digest = sha256(wheel)
        target = dest / wheel.name
        # Same content, same bytes: leave an identical wheel alone; else replace it atomically, which is
        # also safe against a parallel build of the same code.
        if not target.is_file() or sha256(target) != digest:
            os.replace(wheel, target)
        record = Path(work) / RECORD
        record.write_text(json.dumps({"source": source_sha256, "wheel": target.name, "sha256": digest}))
        os.replace(record, dest / RECORD)
    return target, digest, True


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
    target, digest, built = wheel_of(module, source, dest, module.params["python"])
    name, version = target.name.split("-")[:2]
    module.exit_json(
        changed=False,
        path=str(target),
        filename=target.name,
        name=name,
        version=version,
        sha256=digest,
        built=built,
    )


if __name__ == "__main__":
    main()
