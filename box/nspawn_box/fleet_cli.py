"""Command line of tfstack-fleet: up, down, destroy, status, and mirror (`make up`'s package mirror)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import fleet, fleet_inventory, local_mirror, network
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
  mirror   boot only a package mirror for the local box of `make up` (TFSTACK_APT_SOURCE=mirror):
           tfstack-mirror on this machine's network, HTTP 127.0.0.1:8091, apt proxy :3143; write its
           inventory .box/mirror/inventory.ini and, with --record DIR, how hosts install from it in
           DIR/group_vars/all.json (remove it with: tfstack-box destroy --name tfstack-mirror)
"""


def _parser() -> argparse.ArgumentParser:
    sizes = argparse.ArgumentParser(add_help=False)
    sizes.add_argument("--tfserving-hosts", type=int, default=2, help="TF Serving hosts (default: 2)")
    sizes.add_argument("--web-hosts", type=int, default=1, help="web hosts (default: 1)")
    booting = argparse.ArgumentParser(add_help=False)
    booting.add_argument("--boot-timeout", type=float, default=120, help="seconds per box (default: 120)")
    parser = argparse.ArgumentParser(
        prog="tfstack-fleet", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{up,down,destroy,status,mirror}")
    upstream_help = "JSON naming the mirror's upstream (`tfstack-standin-repo ansible-vars` prints it)"
    up = commands.add_parser("up", parents=[sizes, booting], help="boot the fleet and write its inventory")
    up.add_argument("--upstream", type=Path, required=True, help=upstream_help)
    for name, text in (("down", "power the fleet off"), ("destroy", "remove the fleet")):
        command = commands.add_parser(name, parents=[sizes], help=text)
        command.add_argument("--stop-timeout", type=float, default=60, help="seconds per box (default: 60)")
    commands.add_parser("status", parents=[sizes], help="does every box run?")
    mirror = commands.add_parser("mirror", parents=[booting], help="boot `make up`'s package mirror")
    mirror.add_argument("--upstream", type=Path, help=f"{upstream_help}; default: TF Serving's own")
    mirror.add_argument("--record", type=Path, metavar="DIR", help="an inventory's folder to record it in")
    return parser


def _mirror(args: argparse.Namespace) -> None:
    upstream = fleet.read_upstream(args.upstream) if args.upstream else None
    print(f"fleet: mirror inventory {local_mirror.up(upstream, args.boot_timeout)}", flush=True)
    if args.record:
        print(f"fleet: recorded the mirror in {local_mirror.record(args.record)}", flush=True)


def _dispatch(args: argparse.Namespace) -> int | None:
    if args.command == "mirror":
        _mirror(args)
        return 0
    members = fleet.members(args.tfserving_hosts, args.web_hosts)
    if args.command == "up":
        upstream = fleet.read_upstream(args.upstream)
        fleet.up(members, args.boot_timeout)
        inventory = fleet_inventory.write(members, upstream, fleet.fleet_site())
        print(f"fleet: inventory {inventory}", flush=True)
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
