"""Command line of tfstack-box: up, down, destroy, ssh, status."""

from __future__ import annotations

import argparse

from . import lifecycle, network
from .errors import run_reporting_errors
from .settings import (
    DEFAULT_NAME,
    DEFAULT_SSH_PORT,
    SHARED_NETWORK_SSH_HOST,
    Box,
)

DESCRIPTION = """\
The local box: a Debian 12 machine with systemd as PID 1 under systemd-nspawn, with an SSH login
(user vagrant, passwordless sudo), the way `vagrant up` gives one. By default it shares the host's
network (sshd on 127.0.0.1:<ssh port>, ports it opens appear on the host); with --address it boots in
a network namespace of its own on the project's private network (bridge tfstack0, 10.213.0.0/24,
this machine 10.213.0.1, no route anywhere else), sshd on <address>:22.

  up       build the image once (cached), create the box if missing, boot it, wait for systemd,
           write the Ansible inventory; does nothing to a box that already runs
  down     power the box off cleanly (killed after --stop-timeout), keeping its files
  destroy  stop the box and remove its processes, cgroups, root, key and inventory
  ssh      log in as vagrant, or run a command: tfstack-box ssh -- sudo -n true
  status   say whether the box runs (exit 0) or not (exit 3)
"""
EPILOG = """\
files: box root and log under $TFSTACK_STATE_DIR/boxes/<name> (default /var/lib/tfserving-stack),
image under $TFSTACK_CACHE_DIR/box (default /var/cache/tfserving-stack), key and known_hosts in
.box/<name>/, inventory in .box/inventory.ini (other names: .box/<name>/inventory.ini).
"""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default=DEFAULT_NAME, help=f"box name (default: {DEFAULT_NAME})")
    common.add_argument(
        "--ssh-port",
        type=int,
        default=None,
        help=f"port sshd listens on at {SHARED_NETWORK_SSH_HOST} on a box sharing the host's network "
        f"(default: the box's last one, else {DEFAULT_SSH_PORT})",
    )
    common.add_argument(
        "--address",
        default=None,
        help=f"boot on the private network with this address in {network.NETWORK} "
        "(default: the box's last one, else the host's network)",
    )
    parser = argparse.ArgumentParser(
        prog="tfstack-box",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{up,down,destroy,ssh,status}")
    up = commands.add_parser("up", parents=[common], help="create and boot the box (idempotent)")
    up.add_argument(
        "--boot-timeout", type=float, default=120, help="seconds to wait for systemd (default: 120)"
    )
    for name, help_text in (
        ("down", "power the box off, keeping its files"),
        ("destroy", "remove the box entirely"),
    ):
        command = commands.add_parser(name, parents=[common], help=help_text)
        command.add_argument(
            "--stop-timeout", type=float, default=60, help="seconds before a clean poweroff turns into a kill"
        )
    ssh = commands.add_parser("ssh", parents=[common], help="ssh into the box as vagrant")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER, help="command to run (after --)")
    commands.add_parser("status", parents=[common], help="is the box running?")
    return parser


def _box(args: argparse.Namespace) -> Box:
    return lifecycle.resolve_box(args.name, args.ssh_port, args.address)


def _dispatch(args: argparse.Namespace) -> int | None:
    box = _box(args)
    if args.command == "up":
        lifecycle.up(box, args.boot_timeout)
    elif args.command == "down":
        lifecycle.down(box, args.stop_timeout)
    elif args.command == "destroy":
        lifecycle.destroy(box, args.stop_timeout)
    elif args.command == "ssh":
        lifecycle.ssh(box, args.remote_command)
    elif args.command == "status":
        return lifecycle.status(box)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_reporting_errors("box", lambda: _dispatch(args))
