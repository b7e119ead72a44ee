"""How `make test` spreads the tests over pytest-xdist workers: a test folder (tests/fleet, tests/deploy,
tests/webapp, ...) is one unit of work, so its boxes and its package- and session-scoped fixtures live in
one worker only (the box tests share one box name, the deploy tests one box, the fleet its five boxes).

The two longest folders are collected first, so they start at once on workers of their own: the run
takes as long as the longest of them, and the others fill the remaining worker meanwhile.
"""

from __future__ import annotations

from typing import Any

import pytest

LONGEST_FOLDERS_FIRST = ("fleet", "deploy")


def folder_of(nodeid: str) -> str:
    """tests/<folder>/test_x.py::test_y -> <folder>; a module directly in tests/ is a folder of its own."""
    parts = nodeid.split("::", 1)[0].split("/")
    return parts[1] if len(parts) > 2 else parts[-1].removesuffix(".py")


def longest_folders_first(items: list[pytest.Item]) -> None:
    """Sorts in place; stable, so each folder keeps its own order."""
    others = len(LONGEST_FOLDERS_FIRST)

    def rank(item: pytest.Item) -> int:
        folder = folder_of(item.nodeid)
        return LONGEST_FOLDERS_FIRST.index(folder) if folder in LONGEST_FOLDERS_FIRST else others

    items.sort(key=rank)


class FolderSchedulingPlugin:
    """Registered by tests/conftest.py when xdist is active. xdist's own `--dist=loadgroup` would do
    this with marks, but it renames items through an attribute pytest 9 no longer reads, so every test
    becomes a group of its own; a scheduler whose scope is the folder needs no renaming."""

    @pytest.hookimpl
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        # Imported here: a run without xdist (`-p no:xdist`) never loads it.
        from xdist.scheduler import LoadScopeScheduling

        class FolderScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return folder_of(nodeid)

        return FolderScheduling(config, log)
