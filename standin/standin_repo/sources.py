"""The project files a build reads: the stand-in's source folder and the pinned constraints.

Both default to paths relative to the working directory, the repository root from which make, the
tests and scripts/stack-up run the command; `build --standin-source/--constraints` name others.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from standin_repo.common import RepoError

DEFAULT_STANDIN_SOURCE = Path("standin")
DEFAULT_CONSTRAINTS = Path("requirements") / "constraints.txt"


@dataclasses.dataclass(frozen=True)
class Sources:
    standin: Path  # the folder of the tfserving-standin distribution (its pyproject.toml)
    constraints: Path  # the pip constraints file the package installs the wheel with

    def checked(self) -> Sources:
        """The same paths made absolute, or a RepoError saying which one is missing."""
        standin, constraints = self.standin.resolve(), self.constraints.resolve()
        if not (standin / "pyproject.toml").is_file():
            raise RepoError(
                f"no stand-in source at {standin} (no pyproject.toml); "
                "run from the repository root or pass --standin-source"
            )
        if not constraints.is_file():
            raise RepoError(
                f"no constraints file at {constraints}; run from the repository root or pass --constraints"
            )
        return Sources(standin, constraints)

    def standin_files(self) -> list[Path]:
        """The files a wheel is built from: the folder without byte code and setuptools' build output."""
        return sorted(
            path
            for path in self.standin.rglob("*")
            if path.is_file() and not _is_build_output(path.relative_to(self.standin))
        )

    def digest(self, *extra: str) -> str:
        """What the packages are built from; an unchanged digest means an unchanged repository."""
        digest = hashlib.sha256("\n".join(extra).encode())
        for path in self.standin_files():
            digest.update(str(path.relative_to(self.standin)).encode())
            digest.update(path.read_bytes())
        digest.update(self.constraints.read_bytes())
        return digest.hexdigest()


def _is_build_output(relative: Path) -> bool:
    parts = relative.parts
    return (
        parts[0] in ("build", "dist")
        or relative.suffix == ".pyc"
        or any(part == "__pycache__" or part.endswith(".egg-info") for part in parts)
    )
