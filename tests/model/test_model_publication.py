"""Versioning and atomic publication, exercised directly (no TensorFlow, so these run in milliseconds)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from model_export.cli import positive_int
from model_export.errors import PipelineError
from model_export.publication import (
    existing_versions,
    plan_publication,
    publish,
    remove_abandoned_staging,
)
from tests.model.model_helpers import tree


def make_version(model_root: Path, name: str, content: str = "old") -> Path:
    version = model_root / name
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_text(content)
    return version


def write_model(content: str):
    def build(staging: Path) -> None:
        (staging / "saved_model.pb").write_text(content)

    return build


def test_first_version_is_1(tmp_path: Path) -> None:
    assert plan_publication(tmp_path, "digits", None, force=False).version == 1


def test_next_version_follows_the_highest_integer_directory(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    for name in ("1", "3", "10.partial", "v12", ".staging-20-1-abc"):
        make_version(root, name)
    (root / "15").write_text("a file, not a version")
    assert existing_versions(root) == [1, 3]
    assert plan_publication(tmp_path, "digits", None, force=False).version == 4


def test_requested_version_is_used(tmp_path: Path) -> None:
    make_version(tmp_path / "digits", "1")
    plan = plan_publication(tmp_path, "digits", 7, force=False)
    assert (plan.version, plan.replaces_existing) == (7, False)


def test_existing_version_needs_force(tmp_path: Path) -> None:
    make_version(tmp_path / "digits", "2")
    with pytest.raises(PipelineError, match=r"version 2 already exists .*--force"):
        plan_publication(tmp_path, "digits", 2, force=False)
    assert plan_publication(tmp_path, "digits", 2, force=True).replaces_existing


@pytest.mark.parametrize("text", ["abc", "1.5", "0", "-3", ""])
def test_version_must_be_a_positive_integer(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int(text)


def test_number_appears_only_when_the_build_is_complete(tmp_path: Path) -> None:
    plan = plan_publication(tmp_path, "digits", None, force=False)
    seen_during_build: list[list[str]] = []

    def build(staging: Path) -> None:
        # While the version is being written, TF Serving must see no integer directory.
        assert staging.parent == plan.model_root
        assert not staging.name.isdigit()
        (staging / "saved_model.pb").write_text("new")
        seen_during_build.append(sorted(entry.name for entry in plan.model_root.iterdir()))

    target = publish(plan, build)
    assert target == tmp_path / "digits" / "1"
    assert [name.isdigit() for name in seen_during_build[0]] == [False]
    assert tree(tmp_path / "digits") == ["1", "1/saved_model.pb"]
    assert (target / "saved_model.pb").read_text() == "new"


def test_published_directory_is_readable_by_the_server_user(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        target = publish(plan_publication(tmp_path, "digits", None, False), write_model("new"))
    finally:
        os.umask(old_umask)
    assert target.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("failure", [RuntimeError("export broke"), KeyboardInterrupt()])
def test_failed_build_leaves_nothing(tmp_path: Path, failure: BaseException) -> None:
    serving_dir = tmp_path / "serving_model"

    def build(staging: Path) -> None:
        (staging / "saved_model.pb").write_text("half")
        raise failure

    with pytest.raises(type(failure)):
        publish(plan_publication(serving_dir, "digits", None, force=False), build)
    # Even the folders this run created are gone again.
    assert not serving_dir.exists()


def test_failed_build_keeps_existing_versions(tmp_path: Path) -> None:
    make_version(tmp_path / "digits", "1")
    before = tree(tmp_path)

    def build(staging: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        publish(plan_publication(tmp_path, "digits", 1, force=True), build)
    assert tree(tmp_path) == before
    assert (tmp_path / "digits" / "1" / "saved_model.pb").read_text() == "old"


def test_force_replaces_the_version_and_cleans_up(tmp_path: Path) -> None:
    make_version(tmp_path / "digits", "1")
    make_version(tmp_path / "digits", "2", content="keep")
    publish(plan_publication(tmp_path, "digits", 1, force=True), write_model("new"))
    assert (tmp_path / "digits" / "1" / "saved_model.pb").read_text() == "new"
    assert (tmp_path / "digits" / "2" / "saved_model.pb").read_text() == "keep"
    assert tree(tmp_path / "digits") == ["1", "1/saved_model.pb", "2", "2/saved_model.pb"]


def test_version_published_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    plan = plan_publication(tmp_path, "digits", None, force=False)

    def build(staging: Path) -> None:
        make_version(tmp_path / "digits", "1", content="other run")

    with pytest.raises(PipelineError, match="meanwhile"):
        publish(plan, build)
    assert tree(tmp_path / "digits") == ["1", "1/saved_model.pb"]


def test_staging_of_killed_runs_is_removed_but_live_ones_kept(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    dead_pid = 2**22 + 1  # above the kernel's pid_max limit, so no process can have it
    abandoned = make_version(root, f".staging-3-{dead_pid}-abc")
    live = make_version(root, f".staging-4-{os.getpid()}-abc")
    assert remove_abandoned_staging(root) == [abandoned]
    assert live.exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "12", ".hidden"])
def test_model_name_must_be_a_plain_folder_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(PipelineError, match="invalid model name"):
        plan_publication(tmp_path, name, None, force=False)


def test_output_folder_below_a_file_is_rejected_before_writing(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(PipelineError, match="not a directory"):
        plan_publication(blocker / "serving_model", "digits", None, force=False)
    assert tree(tmp_path) == ["a-file"]
