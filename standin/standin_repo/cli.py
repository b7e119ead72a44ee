"""Command line of tfstack-standin-repo: build, serve, stop, status, ansible-vars, record."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from standin_repo import serving
from standin_repo.build import build
from standin_repo.common import DEFAULT_PORT, FINGERPRINT_NAME, PROG, RepoError, repo_dir, say, work_dir
from standin_repo.sources import DEFAULT_CONSTRAINTS, DEFAULT_STANDIN_SOURCE, Sources

DESCRIPTION = """\
Build, sign and serve the local apt repository of the TF Serving stand-in (a test double of
tensorflow_model_server), for machines that cannot reach TensorFlow Serving's own repository. Boxes
install it the way they would install the real package: a deb822 source, a signing key checked by apt,
`apt-get install tensorflow-model-server`.
"""
BUILD_DESCRIPTION = """\
Builds the stand-in's wheel and the two packages carrying it, indexes and signs them; does nothing when
the sources did not change. The sources are read relative to the working directory (run it from the
repository root) unless named with the options below.
"""


RECORD_DESCRIPTION = """\
Builds the repository (when its sources changed), serves it, and writes the role variables that point
at it to DIR/group_vars/all.json, beside the Ansible inventory in DIR. Ansible reads group vars next to
an inventory on every run, so the plain `ansible-playbook -i DIR/inventory.ini site.yml` keeps using this
repository: how `make up` (DIR .box) and the deployment tests record their repository choice.
"""


def role_vars(port: int) -> dict[str, str]:
    """The role variables that point tensorflow_serving at this repository."""
    fingerprint_file = repo_dir() / FINGERPRINT_NAME
    if not fingerprint_file.is_file():
        raise RepoError(f"no repository built yet; run `{PROG} build` first")
    return {
        "tensorflow_serving_apt_repo_url": serving.url_for(serving.served_port(port)),
        "tensorflow_serving_apt_key_fingerprint": fingerprint_file.read_text().strip(),
    }


def record(inventory_dir: Path, sources: Sources, port: int) -> None:
    """Build, serve, and record the role variables in group vars beside the inventory in inventory_dir."""
    group_vars = inventory_dir / "group_vars"
    hiding = [group_vars / name for name in ("all", "all.yml", "all.yaml") if (group_vars / name).exists()]
    if hiding:
        raise RepoError(f"{hiding[0]} would hide group_vars/all.json from Ansible; remove it first")
    build(sources)
    serving.serve(port)
    settings = json.dumps(role_vars(port), indent=2) + "\n"
    group_vars.mkdir(parents=True, exist_ok=True)
    path = group_vars / "all.json"
    if not path.is_file() or path.read_text() != settings:
        path.write_text(settings)
    say(f"recorded the repository in {path}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Files live under $TFSTACK_CACHE_DIR/standin-repo (now {work_dir()}).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    sources = argparse.ArgumentParser(add_help=False)
    sources.add_argument(
        "--standin-source", type=Path, default=DEFAULT_STANDIN_SOURCE, metavar="DIR",
        help=f"the stand-in's source folder, with its pyproject.toml (default: {DEFAULT_STANDIN_SOURCE})",
    )  # fmt: skip
    sources.add_argument(
        "--constraints", type=Path, default=DEFAULT_CONSTRAINTS, metavar="FILE",
        help=f"pip constraints the package installs the stand-in with (default: {DEFAULT_CONSTRAINTS})",
    )  # fmt: skip
    commands.add_parser(
        "build",
        parents=[sources],
        help="build and sign the repository (skipped when nothing changed)",
        description=BUILD_DESCRIPTION,
    )
    serve_parser = commands.add_parser("serve", help="serve it on 127.0.0.1 in the background")
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    commands.add_parser("stop", help="stop serving")
    commands.add_parser("status", help="exit 0 when serving, 3 when not")
    vars_parser = commands.add_parser("ansible-vars", help="print the role variables for it (JSON)")
    vars_parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=argparse.SUPPRESS)
    record_parser = commands.add_parser(
        "record",
        parents=[sources],
        help="build, serve, and record the role variables beside an inventory (DIR/group_vars/all.json)",
        description=RECORD_DESCRIPTION,
    )
    record_parser.add_argument("inventory_dir", type=Path, metavar="DIR", help="the inventory's folder")
    record_parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "build":
        build(Sources(args.standin_source, args.constraints))
    elif args.command == "serve":
        serving.serve(args.port)
    elif args.command == "stop":
        serving.stop()
    elif args.command == "status":
        return serving.status()
    elif args.command == "record":
        record(args.inventory_dir, Sources(args.standin_source, args.constraints), args.port)
    else:
        print(json.dumps(role_vars(args.port), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except RepoError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
