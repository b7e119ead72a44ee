"""scripts/role_docs.py: the README tables come from argument_specs (descriptions, types, choices) and
defaults/main.yml (values), and --check fails on a README that no longer matches them."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT, VENV_BIN

BEGIN = "<!-- BEGIN GENERATED from meta/argument_specs.yml and defaults/main.yml by `make docs` -->"
END = "<!-- END GENERATED -->"


def role_docs(roles: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "python"), str(REPO_ROOT / "scripts/role_docs.py"), "--roles-dir", str(roles), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def roles(tmp_path: Path) -> Path:
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "meta/argument_specs.yml").write_text(
        textwrap.dedent("""\
        argument_specs:
          main:
            short_description: Demo
            options:
              demo_port:
                type: int
                description: Port it listens on.
              demo_mode:
                type: str
                choices: [fast, safe]
                description:
                  - How it runs; paths like <root>/<name> stay readable.
                  - A second paragraph | with a pipe.
              demo_source:
                type: path
                required: true
                description: Where the code is.
              demo_items:
                type: list
                elements: dict
                description: Items.
                required_if:
                  - [kind, pinned, [version]]
                options:
                  kind:
                    type: str
                    default: latest
                    description: Kind.
                  version:
                    type: int
                    description: Version.
          extra:
            short_description: A second entry point
            options:
              demo_port:
                type: int
                description: Port it listens on.
        """)
    )
    (role / "defaults/main.yml").write_text('demo_port: 8080\ndemo_mode: ""\ndemo_items: []\n')
    (role / "README.md").write_text(f"# demo\n\nIntro.\n\n{BEGIN}\nold table\n{END}\n\nOutro.\n")
    return tmp_path / "roles"


def test_check_finds_the_stale_readme_and_a_run_rewrites_it(roles: Path) -> None:
    check = role_docs(roles, "--check")
    assert check.returncode == 1
    assert "stale:" in check.stdout and "demo/README.md" in check.stdout

    assert role_docs(roles).returncode == 0
    assert role_docs(roles, "--check").returncode == 0


def test_the_tables(roles: Path) -> None:
    role_docs(roles)
    readme = (roles / "demo/README.md").read_text()
    assert readme.startswith("# demo\n\nIntro.\n\n" + BEGIN + "\n")
    assert readme.endswith(END + "\n\nOutro.\n")
    assert "| `demo_port` | int | `8080` | Port it listens on. |" in readme
    assert (
        '| `demo_mode` | str | `""` | How it runs; paths like &lt;root&gt;/&lt;name&gt; stay readable. '
        "A second paragraph \\| with a pipe. One of `fast`, `safe`. |"
    ) in readme
    assert "| `demo_source` | path | required | Where the code is. |" in readme
    assert "Keys of each `demo_items` entry:" in readme
    assert "| `kind` | str | `latest` | Kind. |" in readme
    assert "`version` required when `kind` is `pinned`." in readme
    assert "### Entry point `extra`" in readme
    assert "Reads, as described for `main`: `demo_port`." in readme


def test_a_readme_without_markers_is_an_error(roles: Path) -> None:
    (roles / "demo/README.md").write_text("# demo\n")
    result = role_docs(roles)
    assert result.returncode == 1
    assert "demo/README.md is missing or lacks the lines" in result.stderr
    assert (roles / "demo/README.md").read_text() == "# demo\n"


def test_a_role_without_readme_is_an_error(roles: Path) -> None:
    (roles / "demo/README.md").unlink()
    result = role_docs(roles, "--check")
    assert result.returncode == 1
    assert "demo/README.md is missing" in result.stderr
    assert "Traceback" not in result.stderr
