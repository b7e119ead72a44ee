"""Command line of tfstack-fleet: up, down, destroy, status."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import fleet, fleet_inventory, network
from .errors import run_reporting_errors

DESCRIPTION = f"""\
The test fleet: boxes that stand for separate servers. A package mirror on this machine's network
(fleet-mirror), and on the private network {network.NETWORK} (no route anywhere else) a load balancer
(fleet-lb, .10), TF Serving hosts (fleet-tfs1.., .11-) and web hosts (fleet-web1.., .21-).

  up       boot every box (tfstack-box up) and write the Ansible inventory .box/fleet/inventory.ini
           with group_vars/ and host_vars/ beside it (packages come from the mirror)
  down     power every box off, keeping the files
  destroy  remove every box and .box/fleet/
  status   exit 0 when every box runs, 3 otherwise
"""


def _parser() -> argparse.ArgumentParser:
    sizes = argparse.ArgumentParser(add_help=False)
    sizes.add_argument("--tfserving-hosts", type=int, default=2, help="TF Serving hosts (default: 2)")
    sizes.add_argument("--web-hosts", type=int, default=1, help="web hosts (default: 1)")
    parser = argparse.ArgumentParser(
        prog="tfstack-fleet", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{up,down,destroy,status}")
    up = commands.add_parser("up", parents=[sizes], help="boot the fleet and write its inventory")
    up.add_argument(
        "--upstream",
        type=Path,
        required=True,
        help="JSON with the mirror's upstream repository (what `tfstack-standin-repo ansible-vars` prints)",
    )
    up.add_argument("--boot-timeout", type=float, default=120, help="seconds per box (default: 120)")
    for name, text in (("down", "power the fleet off"), ("destroy", "remove the fleet")):
        command = commands.add_parser(name, parents=[sizes], help=text)
        command.add_argument("--stop-timeout", type=float, default=60, help="seconds per box (default: 60)")
    commands.add_parser("status", parents=[sizes], help="does every box run?")
    return parser


def _dispatch(args: argparse.Namespace) -> int | None:
    members = fleet.members(args.tfserving_hosts, args.web_hosts)
    if args.command == "up":
        upstream = fleet.read_upstream(args.upstream)
        fleet.up(members, args.boot_timeout)
        print(f"fleet: inventory {fleet_inventory.write(members, upstream)}", flush=True)
    elif args.command == "down":
        fleet.down(members, args.stop_timeout)
    elif args.command == "destroy":
        fleet.destroy(members, args.stop_timeout)
    elif args.command == "status":
        return fleet.status(members)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_reporting_errors("fleet", lambda: _dispatch(args))
