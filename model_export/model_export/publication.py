"""Versioned, atomic publication into serving_model/<name>/<version>/.

TF Serving polls the model folder every second and treats every integer-named sub-directory as a
version; other names are skipped. A version is therefore built under a hidden, non-numeric staging
name in the same folder (same filesystem, so the final rename is atomic) and renamed to its number
only after it has been written and verified. Any failure, including Ctrl-C, removes the staging
directory and any folder this run created, so nothing half-written is ever left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model_export import interrupts
from model_export.errors import PipelineError

STAGING_PREFIX = ".staging-"
REPLACED_PREFIX = ".replaced-"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class PublicationPlan:
    model_root: Path  # serving_model/<name>
    version: int
    replaces_existing: bool

    @property
    def target(self) -> Path:
        return self.model_root / str(self.version)


def existing_versions(model_root: Path) -> list[int]:
    """Version numbers as TF Serving sees them: sub-directories whose whole name is an integer."""
    if not model_root.is_dir():
        return []
    return sorted(
        int(entry.name) for entry in model_root.iterdir() if entry.name.isdigit() and entry.is_dir()
    )


def check_model_name(name: str) -> None:
    if not _MODEL_NAME.match(name) or name.isdigit():
        raise PipelineError(
            f"invalid model name {name!r}: use letters, digits, '_', '-', '.', not only digits"
        )


def check_writable_folder(folder: Path) -> None:
    """Fail early, before any work, if the folder (or the ancestor it would be created in) is unusable."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise PipelineError(f"output folder is not usable: {probe} is not a directory")
    # Try it rather than ask os.access(): root passes every permission check, yet still cannot write to
    # a read-only or immutable filesystem. The probe is a hidden, non-numeric name, removed at once.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-probe-", dir=probe))
    except OSError as error:
        raise PipelineError(f"output folder is not writable: {probe} ({error.strerror})") from None


def plan_publication(serving_dir: Path, name: str, version: int | None, force: bool) -> PublicationPlan:
    """Decide the version without writing anything: next integer, or the requested one."""
    check_model_name(name)
    model_root = serving_dir / name
    check_writable_folder(model_root)
    versions = existing_versions(model_root)
    if version is None:
        return PublicationPlan(model_root, (versions[-1] + 1) if versions else 1, replaces_existing=False)
    exists = version in versions or (model_root / str(version)).exists()
    if exists and not force:
        raise PipelineError(f"version {version} already exists in {model_root}; use --force to replace it")
    return PublicationPlan(model_root, version, replaces_existing=exists)


def _make_folders(folder: Path) -> list[Path]:
    """mkdir -p that returns what it created, so a failed run can remove exactly those folders."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    created = []
    for path in reversed(missing):
        path.mkdir()
        created.append(path)
    return created


def _remove_created_folders(created: list[Path]) -> None:
    for path in reversed(created):
        # rmdir only removes an empty folder: never something another run has put there meanwhile.
        with contextlib.suppress(OSError):
            path.rmdir()


def _readable_by_others(directory: Path) -> None:
    """mkdtemp makes 0700 directories; the server usually runs as another user, so apply the umask."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)


def _move_into_place(staging: Path, plan: PublicationPlan) -> None:
    target = plan.target
    if not target.exists():
        os.rename(staging, target)
        return
    if not plan.replaces_existing:
        # Another run published this number while we were building.
        raise PipelineError(f"version {plan.version} appeared in {plan.model_root} meanwhile; not replaced")
    # --force: move the old version aside first (a directory cannot be renamed over a non-empty one),
    # put the new one in place, and only then delete the old one.
    aside = Path(
        tempfile.mkdtemp(prefix=f"{REPLACED_PREFIX}{plan.version}-{os.getpid()}-", dir=plan.model_root)
    )
    os.rename(target, aside / "old")
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside / "old", target)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def remove_abandoned_staging(model_root: Path) -> list[Path]:
    """Remove staging directories left by runs that were killed outright (SIGKILL, power loss), which
    no exception handler could clean up. The name carries the writer's pid; live writers are left alone."""
    removed = []
    if not model_root.is_dir():
        return removed
    for entry in model_root.iterdir():
        if not entry.name.startswith((STAGING_PREFIX, REPLACED_PREFIX)):
            continue
        fields = entry.name.split("-")
        pid = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else None
        if pid is not None and not _process_is_alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def publish(plan: PublicationPlan, build: Callable[[Path], None]) -> Path:
    """Run build(staging_dir) and rename the result to serving_model/<name>/<version>.

    build() writes the complete version into the (empty, existing) directory it is given and raises
    if anything is wrong; it may call interrupts.check() between its steps. On any exception,
    KeyboardInterrupt included, nothing is left behind.
    """
    # Deferred from the first folder created to the rename: an interrupt is only acted on at a
    # check(), so no moment exists where a directory was made but is not yet known to the clean-up.
    with interrupts.deferred():
        try:
            created = _make_folders(plan.model_root)
        except OSError as error:
            raise PipelineError(f"cannot create output folder {plan.model_root}: {error.strerror}") from None
        staging: Path | None = None
        try:
            remove_abandoned_staging(plan.model_root)
            try:
                staging = Path(
                    tempfile.mkdtemp(
                        prefix=f"{STAGING_PREFIX}{plan.version}-{os.getpid()}-", dir=plan.model_root
                    )
                )
                _readable_by_others(staging)
            except OSError as error:
                raise PipelineError(
                    f"cannot write to output folder {plan.model_root}: {error.strerror}"
                ) from None
            interrupts.check()
            build(staging)
            interrupts.check()
            try:
                _move_into_place(staging, plan)
            except OSError as error:
                raise PipelineError(f"cannot publish {plan.target}: {error.strerror}") from None
        except BaseException:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            _remove_created_folders(created)
            if interrupts.requested():
                raise KeyboardInterrupt from None  # whatever the interrupt was turned into on its way
            raise
    return plan.target
