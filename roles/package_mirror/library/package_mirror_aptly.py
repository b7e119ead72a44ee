#!/usr/bin/python
"""Ansible module: update aptly's mirror of an upstream apt repository and publish a signed snapshot."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: package_mirror_aptly
short_description: Mirror an upstream apt repository with aptly and publish it signed with our own key
description:
  - Checks the upstream C(InRelease) signature with gpgv against the pinned upstream keyring the way apt
    does, and refuses to update when it is bad or made by an expired or revoked key (aptly alone accepts
    a signature of an expired key).
  - Then, per component, updates an aptly mirror filtered to the package of that name and imports it into
    a local repository that never drops a version, so versions that upstream deletes stay installable.
  - When the local repositories hold other packages than the published snapshots, takes new snapshots and
    publishes (or switches) them under one distribution, signed with the mirror's own key. Otherwise
    changes nothing.
  - In check mode only the upstream signature is checked.
options:
  config:
    description: aptly configuration file.
    type: path
    required: true
  gnupg_home:
    description: GNUPGHOME that holds the signing key (aptly signs with gpg from there).
    type: path
    required: true
  upstream_url:
    description: Root URL of the upstream repository (the folder holding dists/).
    type: str
    required: true
  upstream_keyring:
    description: Keyring file with the pinned upstream key only.
    type: path
    required: true
  distribution:
    description: Upstream distribution (suite), published under the same name.
    type: str
    required: true
  components:
    description: Components to mirror; each is filtered to the package named like the component.
    type: list
    elements: str
    required: true
  architectures:
    description: Architectures to mirror.
    type: list
    elements: str
    required: true
  signing_fingerprint:
    description: Fingerprint of the key that signs the published repository.
    type: str
    required: true
  prefix:
    description: Publishing prefix, the folder under aptly's public/ that clients point at.
    type: str
    required: true
  keep_snapshots:
    description: Unpublished snapshots kept per component; older ones are dropped.
    type: int
    default: 10
"""

RETURN = r"""
packages:
  description: Packages (name_version_architecture) per component, as now published.
  type: dict
  returned: success
snapshots:
  description: The published snapshot of each component.
  type: dict
  returned: success
"""

import datetime  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

# gpgv --status-fd words that make apt refuse a repository; aptly would accept the first two.
_REFUSED_STATUS = {
    "EXPKEYSIG": "made by an expired key",
    "REVKEYSIG": "made by a revoked key",
    "BADSIG": "bad (the file was changed after signing)",
    "NO_PUBKEY": "made by a key other than the pinned one",
    "ERRSIG": "not checkable with the pinned key",
}


class MirrorError(Exception):
    """An expected failure: the module fails with this message."""


def upstream_signature_problem(url: str, keyring: str) -> str | None:
    """None when upstream's InRelease carries a good signature of the pinned, unexpired key."""
    in_release = f"{url.rstrip('/')}/InRelease"
    try:
        with urllib.request.urlopen(in_release, timeout=30) as response:
            content = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise MirrorError(f"cannot fetch {in_release}: {getattr(error, 'reason', error)}") from None
    with tempfile.NamedTemporaryFile(suffix=".InRelease") as signed:
        signed.write(content)
        signed.flush()
        result = subprocess.run(
            ["gpgv", "--status-fd", "1", "--keyring", keyring, signed.name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    words = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("[GNUPG:] ")}
    for word, meaning in _REFUSED_STATUS.items():
        if word in words:
            return f"the signature of {in_release} is {meaning} ({word})"
    if "GOODSIG" not in words or "VALIDSIG" not in words:
        return f"{in_release} carries no valid signature of the pinned key"
    return None


class Aptly:
    """The aptly command line with our configuration and gpg home."""

    def __init__(self, config: str, gnupg_home: str) -> None:
        self.config = config
        self.env = {**os.environ, "GNUPGHOME": gnupg_home, "LC_ALL": "C.UTF-8"}

    def run(self, *argv: str) -> str:
        result = subprocess.run(
            ["aptly", f"-config={self.config}", *argv],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
        )
        if result.returncode != 0:
            lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise MirrorError(
                f"aptly {argv[0]} {argv[1]} failed: {lines[-1] if lines else result.returncode}"
            )
        return result.stdout

    def names(self, kind: str) -> set[str]:
        return set(self.run(kind, "list", "-raw").split())

    def packages(self, kind: str, name: str) -> list[str]:
        """Package keys of a repo or snapshot, sorted."""
        lines = self.run(kind, "show", "-with-packages", name).splitlines()
        start = next((i for i, line in enumerate(lines) if line.strip() == "Packages:"), len(lines))
        return sorted(line.strip() for line in lines[start + 1 :] if line.strip())


def mirror_into_repositories(aptly: Aptly, params: dict) -> dict[str, str]:
    """Per component: mirror (created once), updated, imported into its never-shrinking local repo."""
    repositories = {}
    mirrors, repos = aptly.names("mirror"), aptly.names("repo")
    for component in params["components"]:
        mirror, repo = f"upstream-{component}", f"local-{component}"
        if mirror not in mirrors:
            aptly.run(
                "mirror", "create", f"-keyring={params['upstream_keyring']}", f"-filter={component}",
                f"-architectures={','.join(params['architectures'])}",
                mirror, params["upstream_url"], params["distribution"], component,
            )  # fmt: skip
        aptly.run("mirror", "update", f"-keyring={params['upstream_keyring']}", mirror)
        if repo not in repos:
            aptly.run(
                "repo", "create", f"-distribution={params['distribution']}", f"-component={component}", repo
            )
        aptly.run("repo", "import", mirror, repo, component)
        repositories[component] = repo
    return repositories


def published_snapshots(aptly: Aptly, params: dict) -> dict[str, str]:
    """component -> snapshot of the current publication, empty when nothing is published yet."""
    if f"{params['prefix']} {params['distribution']}" not in aptly.run("publish", "list", "-raw"):
        return {}
    shown = aptly.run("publish", "show", params["distribution"], params["prefix"])
    snapshots = {}
    for line in shown.splitlines():
        # "  tensorflow-model-server: local-tensorflow-model-server-20261130T... [snapshot]"
        component, _, rest = line.strip().partition(": ")
        if component in params["components"] and rest:
            snapshots[component] = rest.split()[0]
    return snapshots


def publish(aptly: Aptly, params: dict, repositories: dict[str, str]) -> dict[str, str]:
    """New snapshots of the repositories, published (first time) or switched to."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    snapshots = {}
    for component, repo in repositories.items():
        snapshots[component] = f"{repo}-{stamp}"
        aptly.run("snapshot", "create", snapshots[component], "from", "repo", repo)
    components = list(snapshots)
    signing = [f"-gpg-key={params['signing_fingerprint']}", f"-component={','.join(components)}", "-batch"]
    if published_snapshots(aptly, params):
        aptly.run(
            "publish", "switch", *signing, params["distribution"], params["prefix"], *snapshots.values()
        )
    else:
        aptly.run(
            "publish", "snapshot", *signing, f"-distribution={params['distribution']}",
            f"-architectures={','.join(params['architectures'])}", *snapshots.values(), params["prefix"],
        )  # fmt: skip
    return snapshots


def drop_old_snapshots(aptly: Aptly, params: dict, published: dict[str, str]) -> None:
    """Keeps the newest keep_snapshots per component; the published ones are never dropped."""
    existing = sorted(aptly.names("snapshot"), reverse=True)  # names end in a sortable UTC stamp
    for component in params["components"]:
        ours = [name for name in existing if name.startswith(f"local-{component}-")]
        for name in ours[params["keep_snapshots"] :]:
            if name not in published.values():
                aptly.run("snapshot", "drop", name)
    aptly.run("db", "cleanup")


def converge(module: AnsibleModule) -> dict:
    params = module.params
    problem = upstream_signature_problem(
        f"{params['upstream_url'].rstrip('/')}/dists/{params['distribution']}", params["upstream_keyring"]
    )
    if problem:
        raise MirrorError(f"not updating the mirror: {problem}; clients keep the last published snapshot")
    if module.check_mode:
        return {"changed": False, "msg": "check mode: upstream signature checked, the mirror not updated"}
    aptly = Aptly(params["config"], params["gnupg_home"])
    repositories = mirror_into_repositories(aptly, params)
    published = published_snapshots(aptly, params)
    wanted = {component: aptly.packages("repo", repo) for component, repo in repositories.items()}
    current = {component: aptly.packages("snapshot", snapshot) for component, snapshot in published.items()}
    changed = wanted != current
    if changed:
        published = publish(aptly, params, repositories)
        drop_old_snapshots(aptly, params, published)
    return {"changed": changed, "packages": wanted, "snapshots": published}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "config": {"type": "path", "required": True},
            "gnupg_home": {"type": "path", "required": True},
            "upstream_url": {"type": "str", "required": True},
            "upstream_keyring": {"type": "path", "required": True},
            "distribution": {"type": "str", "required": True},
            "components": {"type": "list", "elements": "str", "required": True},
            "architectures": {"type": "list", "elements": "str", "required": True},
            "signing_fingerprint": {"type": "str", "required": True},
            "prefix": {"type": "str", "required": True},
            "keep_snapshots": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**converge(module))
    except MirrorError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
