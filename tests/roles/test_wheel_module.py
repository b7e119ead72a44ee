"""webapp_wheel, run for real on a copy of webapp/: the wheel the webapp role installs is built from a
clean copy, and its bytes follow its content only, which is what keeps a second deploy at changed=0; an
unchanged source reuses the wheel built last time."""

from __future__ import annotations

import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.roles.plugin_loading import run_module
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.slow  # a few seconds: each build sets up pip's isolated build environment

WEBAPP = REPO_ROOT / "webapp"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    copy = tmp_path / "webapp"
    shutil.copytree(WEBAPP, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    return copy


def build(source: Path, dest: Path, tmp_path: Path) -> dict:
    result = run_module("webapp", "webapp_wheel", {"source": str(source), "dest": str(dest),
                                                   "python": sys.executable}, tmp_path)  # fmt: skip
    assert not result.get("failed"), result.get("msg")
    return result


def members(wheel: str) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_same_code_gives_the_same_wheel(source: Path, tmp_path: Path) -> None:
    first = build(source, tmp_path / "a", tmp_path)
    # Later mtimes and other file modes in the source change nothing.
    for path in source.rglob("*.py"):
        path.touch()
        path.chmod(0o664)
    second = build(source, tmp_path / "b", tmp_path)

    assert first["sha256"] == second["sha256"]
    assert Path(first["path"]).read_bytes() == Path(second["path"]).read_bytes()
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    assert (first["name"], first["version"]) == ("tfserving_web", project["version"])
    assert (
        first["filename"]
        == Path(first["path"]).name
        == f"tfserving_web-{project['version']}-py3-none-any.whl"
    )
    assert first["changed"] is False
    assert "tfserving_web/gunicorn_conf.py" in members(first["path"])


def test_build_leftovers_stay_out_of_the_wheel_and_the_source_stays_clean(
    source: Path, tmp_path: Path
) -> None:
    clean = build(source, tmp_path / "clean", tmp_path)
    # What an in-place `pip wheel` leaves behind: a module deleted since is still in build/lib.
    (source / "build/lib/tfserving_web").mkdir(parents=True)
    (source / "build/lib/tfserving_web/deleted_module.py").write_text("GONE = True\n")
    (source / "tfserving_web.egg-info").mkdir()
    (source / "tfserving_web/__pycache__").mkdir()
    (source / "tfserving_web/__pycache__/settings.cpython-311.pyc").write_bytes(b"\0")
    before = sorted(str(path.relative_to(source)) for path in source.rglob("*"))

    dirty = build(source, tmp_path / "dirty", tmp_path)

    assert dirty["sha256"] == clean["sha256"]
    assert not any("deleted_module" in name or name.endswith(".pyc") for name in members(dirty["path"]))
    assert sorted(str(path.relative_to(source)) for path in source.rglob("*")) == before


def test_changed_code_replaces_the_wheel_in_place(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "wheels"
    old = build(source, dest, tmp_path)
    with (source / "tfserving_web/settings.py").open("a") as settings:
        settings.write("\n# changed\n")

    new = build(source, dest, tmp_path)

    assert new["sha256"] != old["sha256"] and new["built"] is True
    assert new["path"] == old["path"]
    # The wheel and the record of its source; no temporary folder is left.
    assert sorted(path.name for path in dest.iterdir()) == [".source.sha256", new["filename"]]


def test_unchanged_code_reuses_the_wheel_unless_the_wheel_changed(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "wheels"
    first = build(source, dest, tmp_path)
    second = build(source, dest, tmp_path)
    assert (first["built"], second["built"]) == (True, False)
    assert (second["path"], second["sha256"]) == (first["path"], first["sha256"])
    Path(first["path"]).write_bytes(b"not a wheel")

    third = build(source, dest, tmp_path)

    assert third["built"] is True and third["sha256"] == first["sha256"]
    assert Path(third["path"]).read_bytes() != b"not a wheel"


def test_a_folder_without_pyproject_fails(tmp_path: Path) -> None:
    result = run_module("webapp", "webapp_wheel", {"source": str(tmp_path), "dest": str(tmp_path / "out"),
                                                   "python": sys.executable}, tmp_path)  # fmt: skip
    assert result.get("failed") is True
    assert "no pyproject.toml" in result["msg"]


def test_a_failing_build_says_what_pip_said(source: Path, tmp_path: Path) -> None:
    (source / "pyproject.toml").write_text("[project]\nname = \n")
    result = run_module("webapp", "webapp_wheel", {"source": str(source), "dest": str(tmp_path / "out"),
                                                   "python": sys.executable}, tmp_path)  # fmt: skip
    assert result.get("failed") is True
    assert result["msg"].startswith(f"pip wheel {source} failed")
