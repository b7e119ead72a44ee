"""Which version directories a model's version policy asks for (file_system_storage_path_source.cc).

Only directory names that parse as a base-10 integer are versions (absl::SimpleAtoi: surrounding
whitespace and a sign are allowed), so `.staging-5`, `5.partial` or `v1` are skipped silently.
"""

from __future__ import annotations

import logging
import os
import re

from tensorflow_serving.config import file_system_storage_path_source_pb2

from tfserving_standin.errors import invalid_argument

log = logging.getLogger("tensorflow_serving.sources.storage_path.file_system_storage_path_source")

ServableVersionPolicy = (
    file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy
)

_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_version(name: str) -> int | None:
    """The version number a directory name stands for, or None when it is not a version."""
    stripped = name.strip(" \t\n\v\f\r")
    if not _INTEGER.fullmatch(stripped):
        return None
    number = int(stripped)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def versions_on_disk(base_path: str) -> dict[int, str]:
    """Version number -> directory name, for every integer-named child of base_path."""
    by_version: dict[int, str] = {}
    for child in sorted(os.listdir(base_path)):
        number = parse_version(child)
        if number is None:
            continue
        if number in by_version:
            log.warning(
                "Duplicate version directories detected. Version %d will be loaded from %s, "
                "%s will be ignored.",
                number,
                child,
                by_version[number],
            )
        by_version[number] = child
    return by_version


def aspired_versions(model_name: str, base_path: str, policy: ServableVersionPolicy) -> dict[int, str]:
    """Version -> absolute path of the versions the policy wants served right now."""
    if not os.path.exists(base_path):
        raise invalid_argument(
            f"Could not find base path {base_path} for servable {model_name} with error "
            f"NOT_FOUND: {base_path} not found"
        )
    choice = policy.WhichOneof("policy_choice")
    if choice == "specific":
        wanted = list(policy.specific.versions)
        if not wanted:
            log.warning("No specific versions requested for servable %s.", model_name)
            return {}
        # Fast path of the real source: every requested version exists under its plain number.
        if all(os.path.exists(os.path.join(base_path, str(v))) for v in wanted):
            return {v: os.path.join(base_path, str(v)) for v in wanted}
    on_disk = versions_on_disk(base_path)
    if choice == "all":
        chosen = dict(on_disk)
    elif choice == "specific":
        chosen = {v: child for v, child in on_disk.items() if v in set(policy.specific.versions)}
        for missing in sorted(set(policy.specific.versions) - set(chosen)):
            log.warning(
                "Version %d of servable %s, which was requested to be served as a 'specific' version in the "
                "servable's version policy, was not found in the file system",
                missing,
                model_name,
            )
    else:
        keep = max(policy.latest.num_versions, 1)
        chosen = {v: on_disk[v] for v in sorted(on_disk, reverse=True)[:keep]}
    if not chosen:
        log.warning(
            "No versions of servable %s found under base path %s. Did you forget to name your leaf directory "
            "as a number (eg. '/1/')?",
            model_name,
            base_path,
        )
    return {v: os.path.join(base_path, child) for v, child in chosen.items()}
