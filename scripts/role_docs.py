#!/usr/bin/env python3
"""Writes the variable tables of each role's README.md from its meta/argument_specs.yml.

argument_specs is the one place a role variable is described, defaults/main.yml the one place its value
lives; this puts both into the README between the GENERATED markers, so nobody edits the table by hand.

    scripts/role_docs.py            rewrite the tables (make docs)
    scripts/role_docs.py --check    exit 1 and name each README whose tables are stale

Run it from the repository root (or give --roles-dir).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

import yaml

BEGIN = "<!-- BEGIN GENERATED from meta/argument_specs.yml and defaults/main.yml by `make docs` -->"
END = "<!-- END GENERATED -->"
# Outside code spans, angle brackets would read as HTML and pipes would split table cells.
ESCAPES = {"<": "&lt;", ">": "&gt;", "|": "\\|"}


def cell(text: str) -> str:
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(
        part.replace("|", "\\|") if part.startswith("`") else re.sub(r"[<>|]", lambda m: ESCAPES[m[0]], part)
        for part in parts
    )


def prose(description: str | list[str] | None) -> str:
    items = description if isinstance(description, list) else [description or ""]
    return " ".join(" ".join(item.split()) for item in items)


def value(data: Any) -> str:
    """A default as one line of YAML in a code span."""
    if data == "":
        return '`""`'
    text = yaml.safe_dump(data, default_flow_style=True, width=math.inf, sort_keys=False).strip()
    return "`" + text.removesuffix("\n...").strip().replace("|", "\\|") + "`"


def type_of(spec: dict[str, Any]) -> str:
    kind = spec.get("type", "str")
    return f"{kind} of {spec['elements']}" if "elements" in spec else kind


def meaning(spec: dict[str, Any]) -> str:
    text = cell(prose(spec.get("description")))
    if "choices" in spec:
        text += " One of " + ", ".join(f"`{choice}`" for choice in spec["choices"]) + "."
    return text


def table(options: dict[str, dict[str, Any]], defaults: dict[str, Any], heading: str) -> list[str]:
    lines = [f"| {heading} | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, spec in options.items():
        if spec.get("required"):
            default = "required"
        elif name in defaults:
            default = value(defaults[name])
        else:
            default = value(spec["default"]) if "default" in spec else ""
        lines.append(f"| `{name}` | {type_of(spec)} | {default} | {meaning(spec)} |")
    return lines


def suboption_tables(options: dict[str, dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for name, spec in options.items():
        if "options" not in spec:
            continue
        lines += ["", f"Keys of each `{name}` entry:", ""]
        lines += table(spec["options"], {}, "Key")
        for key, wanted, needed in spec.get("required_if", []):
            lines += ["", f"`{'`, `'.join(needed)}` required when `{key}` is `{wanted}`."]
    return lines


def entry_point(name: str, spec: dict[str, Any], main: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    options = spec.get("options") or {}
    lines: list[str] = []
    if name != "main":
        lines += [f"### Entry point `{name}`", "", cell(prose(spec.get("short_description"))) + ".", ""]
        if spec.get("description"):
            lines += [cell(prose(spec["description"])), ""]
    shared = [option for option in options if name != "main" and main.get(option) == options[option]]
    own = {option: options[option] for option in options if option not in shared}
    if shared:
        names = ", ".join(f"`{option}`" for option in shared)
        lines += [f"Reads, as described for `main`: {names}.", ""]
    if own:
        lines += table(own, defaults, "Variable") + suboption_tables(own)
    elif not shared:
        lines += ["No variables."]
    return lines if lines[-1] else lines[:-1]


def render(role: Path) -> str:
    specs = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]
    defaults_file = role / "defaults/main.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) if defaults_file.is_file() else None) or {}
    main = (specs.get("main") or {}).get("options") or {}
    lines: list[str] = []
    for name, spec in specs.items():
        if lines:
            lines.append("")
        lines += entry_point(name, spec, main, defaults)
    return "\n".join(lines)


def updated_readme(role: Path) -> tuple[str, str]:
    """The README as it is and as it should be ("" when it has no place for the tables)."""
    path = role / "README.md"
    readme = path.read_text() if path.is_file() else ""
    if BEGIN not in readme or END not in readme:
        return readme, ""
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return readme, f"{head}{BEGIN}\n{render(role)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roles-dir", type=Path, default=Path("roles"), help="default: ./roles")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a README is stale")
    args = parser.parse_args(argv)
    roles = sorted(path.parent.parent for path in args.roles_dir.glob("*/meta/argument_specs.yml"))
    if not roles:
        parser.error(f"no roles with meta/argument_specs.yml under {args.roles_dir}")
    stale, unplaced = [], []
    for role in roles:
        current, wanted = updated_readme(role)
        if not wanted:
            unplaced.append(role / "README.md")
        elif current != wanted:
            stale.append(role / "README.md")
            if not args.check:
                (role / "README.md").write_text(wanted)
    for path in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {path}")
    for path in unplaced:
        print(f"role_docs: {path} is missing or lacks the lines\n  {BEGIN}\n  {END}", file=sys.stderr)
    return 1 if unplaced or (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
