"""package_mirror's wheelhouse build (tasks_from: wheelhouse_build), run on this machine the way the
controller runs it: across a version bump of one of the project's own packages, then once more with
nothing changed, then with changed pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.playbooks import play_here

pytestmark = pytest.mark.slow

PLAYBOOK = """
- name: Build a wheelhouse the way the mirror's controller does
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Build it
      ansible.builtin.import_role:
        name: package_mirror
        tasks_from: wheelhouse_build
"""


def write_project(folder: Path, version: str) -> None:
    """A package of the project's own with no dependencies, at `version`."""
    (folder / "tfstack_demo").mkdir(parents=True, exist_ok=True)
    (folder / "tfstack_demo" / "__init__.py").write_text(f'VERSION = "{version}"\n')
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "tfstack-demo"\nversion = "{version}"\n'
    )


def test_a_version_bump_replaces_the_projects_wheel_and_only_a_changed_input_rebuilds(tmp_path: Path) -> None:
    project, build = tmp_path / "project", tmp_path / "build"
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("")
    extra = {
        "package_mirror_wheelhouse_projects": [str(project)],
        "package_mirror_wheelhouse_extra_requirements": [],
        "package_mirror_wheelhouse_constraints_file": str(constraints),
        "package_mirror_wheelhouse_build_dir": str(build),
        "package_mirror_wheelhouse_python_version": "3.11",
    }
    wheelhouse = build / "cp311"
    for version in ("1.0", "2.0"):
        write_project(project, version)
        run = play_here(PLAYBOOK, tmp_path, extra)
        assert run.returncode == 0, run.output[-3000:]
        wheels = sorted(path.name for path in wheelhouse.glob("*.whl"))
        assert wheels == [f"tfstack_demo-{version}-py3-none-any.whl"]
    # A build empties the projects' build folder and writes the wheel anew: its mtime tells a build.
    built = build / "projects" / "tfstack_demo-2.0-py3-none-any.whl"
    before = built.stat().st_mtime_ns
    again = play_here(PLAYBOOK, tmp_path, extra)
    assert again.returncode == 0, again.output[-3000:]
    assert again.recap["changed"] == 0, again.changed_tasks()
    assert built.stat().st_mtime_ns == before, "nothing changed, yet the wheel was built again"
    constraints.write_text("# new pins\n")
    repinned = play_here(PLAYBOOK, tmp_path, extra)
    assert repinned.returncode == 0, repinned.output[-3000:]
    assert built.stat().st_mtime_ns != before, "the pins changed, yet nothing was built"
