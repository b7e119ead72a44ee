"""The stand-in's wheel, and the .deb that carries it with the constraints it is installed with.

The package installs /usr/bin/tensorflow_model_server (a wrapper running the stand-in from its virtual
environment) and, under /usr/lib/tensorflow-model-server-standin, the wheel and constraints.txt; its
postinst installs the wheel into that environment. Control file and maintainer scripts are the
templates in standin_repo/debian/, read as package data.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from standin_repo.common import ARCH, PACKAGES, run
from standin_repo.sources import Sources

LIB_DIR = "usr/lib/tensorflow-model-server-standin"
MAINTAINER_SCRIPTS = ("postinst", "postrm")


def build_wheel(sources: Sources, out_dir: Path) -> Path:
    """The stand-in's wheel, built by this interpreter's pip from a clean copy of its source folder.

    The copy keeps setuptools' build/ and egg-info out of the source tree, and stale files of an earlier
    build out of the wheel.
    """
    copy = out_dir / "source"
    for path in sources.standin_files():
        target = copy / path.relative_to(sources.standin)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", out_dir, copy,
        what="pip wheel")  # fmt: skip
    shutil.rmtree(copy)
    (wheel,) = out_dir.glob("*.whl")
    return wheel


def _template(name: str) -> bytes:
    return resources.files("standin_repo").joinpath("debian", name).read_bytes()


def _place_files(root: Path, wheel: Path, constraints: Path) -> None:
    lib = root / LIB_DIR
    (lib / "wheels").mkdir(parents=True)
    shutil.copy(wheel, lib / "wheels" / wheel.name)
    (lib / "requirements").mkdir()
    shutil.copy(constraints, lib / "requirements" / "constraints.txt")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tensorflow_model_server").write_bytes(_template("tensorflow_model_server"))
    (root / "usr/bin/tensorflow_model_server").chmod(0o755)


def _write_control(root: Path, package: str, version: str) -> None:
    control_dir = root / "DEBIAN"
    control_dir.mkdir()
    size_kib = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 1024 + 1
    other = next(name for name in PACKAGES if name != package)
    control = _template("control.in").decode()
    fields = {"@PACKAGE@": package, "@OTHER@": other, "@VERSION@": version, "@SIZE@": str(size_kib)}
    for key, value in fields.items():
        control = control.replace(key, value)
    (control_dir / "control").write_text(control)
    for script in MAINTAINER_SCRIPTS:
        (control_dir / script).write_bytes(_template(script))
        (control_dir / script).chmod(0o755)


def build_deb(
    package: str, version: str, sources: Sources, wheel: Path, staging: Path, out_dir: Path
) -> Path:
    """One of the two packages (same files; they conflict with, replace and provide each other)."""
    root = staging / package
    _place_files(root, wheel, sources.constraints)
    _write_control(root, package, version)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    target = out_dir / f"{package}_{version}_{ARCH}.deb"
    run("dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, target)
    return target
