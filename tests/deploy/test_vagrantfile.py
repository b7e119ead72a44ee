"""The Vagrantfile: `vagrant validate` passes for real, and what it forwards and maps matches the roles.

Vagrant and vagrant-libvirt come from Debian (scripts/install-host-packages). There is no VirtualBox on
Debian 12, so validation runs against the libvirt provider: Vagrant then checks the general settings,
the Ansible provisioner's settings and the libvirt block; the VirtualBox block is only checked here by
reading the text (Vagrant ignores a provider's block unless that provider is the one in use).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.support.paths import REPO_ROOT

VAGRANTFILE = REPO_ROOT / "Vagrantfile"
VAGRANTFILE_TEXT = VAGRANTFILE.read_text()


def load_yaml(*parts: str) -> dict:
    return yaml.safe_load(REPO_ROOT.joinpath(*parts).read_text()) or {}


def vagrant_env(tmp_path: Path) -> dict[str, str]:
    """Vagrant's state goes to tmp_path (no .vagrant/ in the checkout, no ~/.vagrant.d); no phoning home."""
    return {
        **os.environ,
        "VAGRANT_HOME": str(tmp_path / "vagrant-home"),
        "VAGRANT_DOTFILE_PATH": str(tmp_path / "dotfile"),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_DEFAULT_PROVIDER": "libvirt",
        "VAGRANT_NO_COLOR": "1",
    }


def vagrant_validate(directory: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    vagrant = shutil.which("vagrant")
    assert vagrant, "vagrant is not installed: run scripts/install-host-packages (vagrant, vagrant-libvirt)"
    return subprocess.run(
        [vagrant, "validate"],
        cwd=directory,
        env=vagrant_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_vagrant_validate_passes(tmp_path: Path) -> None:
    result = vagrant_validate(REPO_ROOT, tmp_path)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Vagrantfile validated successfully." in result.stdout


def test_vagrant_validate_checks_the_provider_block(tmp_path: Path) -> None:
    """Guards the test above: a misspelled libvirt setting must fail, so the provider block is really read."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("site.yml", "ansible.cfg"):
        shutil.copy(REPO_ROOT / name, copy / name)
    broken, count = re.subn(r"\blv\.memory\b", "lv.memroy", VAGRANTFILE_TEXT)
    assert count == 1, "the libvirt block sets lv.memory once"
    (copy / "Vagrantfile").write_text(broken)
    result = vagrant_validate(copy, tmp_path)
    assert result.returncode != 0
    assert "memroy" in result.stdout + result.stderr


def configured(variable: str, role: str, group: str) -> object:
    """A role variable as the box sees it: the group's group_vars when it sets it, else the role default."""
    value = load_yaml("roles", role, "defaults", "main.yml")[variable]
    for path in (REPO_ROOT / "group_vars" / "all.yml", REPO_ROOT / "group_vars" / f"{group}.yml"):
        group_vars = yaml.safe_load(path.read_text()) if path.is_file() else None
        value = (group_vars or {}).get(variable, value)
    return value


def forwarded_ports() -> set[tuple[int, int, str]]:
    found = set()
    pattern = r'^\s*config\.vm\.network\s+"forwarded_port",(.*)$'
    for line in re.findall(pattern, VAGRANTFILE_TEXT, re.MULTILINE):
        settings = dict(re.findall(r'(\w+):\s*("[^"]*"|\d+)', line))
        found.add((int(settings["guest"]), int(settings["host"]), settings.get("host_ip", "").strip('"')))
    return found


def test_forwarded_ports_are_the_services_ports_on_loopback() -> None:
    ports = [
        int(configured("tensorflow_serving_grpc_port", "tensorflow_serving", "tfserving")),
        int(configured("tensorflow_serving_rest_port", "tensorflow_serving", "tfserving")),
        int(configured("webapp_port", "webapp", "webapp")),
        int(str(configured("prometheus_web_listen_address", "prometheus", "monitoring")).rsplit(":", 1)[1]),
    ]
    assert ports[:3] == [8500, 8501, 8080], "the brief fixes these ports on the box"
    assert forwarded_ports() == {(port, port, "127.0.0.1") for port in ports}


def inventory_groups() -> set[str]:
    text = (REPO_ROOT / "inventory.ini").read_text()
    return set(re.findall(r"^\[([A-Za-z0-9_]+)\]\s*$", text, re.MULTILINE))


def site_groups() -> set[str]:
    """The groups of the plays site.yml runs."""
    hosts = set()
    for entry in yaml.safe_load((REPO_ROOT / "site.yml").read_text()):
        path = REPO_ROOT / entry["ansible.builtin.import_playbook"]
        hosts |= {play["hosts"] for play in yaml.safe_load(path.read_text()) if "hosts" in play}
    return hosts


def ansible_groups() -> dict[str, list[str]]:
    block = re.search(r"ansible\.groups\s*=\s*\{(.*?)\}", VAGRANTFILE_TEXT, re.DOTALL)
    assert block, "the Vagrantfile maps inventory groups with ansible.groups"
    return {
        group: re.findall(r'"([^"]+)"', members)
        for group, members in re.findall(r'"([^"]+)"\s*=>\s*\[([^\]]*)\]', block.group(1))
    }


def machine_names() -> list[str]:
    return re.findall(r'config\.vm\.define\s+"([^"]+)"', VAGRANTFILE_TEXT) or ["default"]


def test_groups_map_the_machine_into_the_groups_of_the_one_machine_stack() -> None:
    """The VM is TF Serving, the web front end and their Prometheus on one machine: it is in those three
    groups, and the groups of site.yml's other plays (the package mirror, the load balancer) stay empty,
    so those plays are skipped. The example inventory names every group site.yml uses (the node
    exporter's play runs on `all`)."""
    groups = ansible_groups()
    assert set(groups) == {"tfserving", "webapp", "monitoring"}
    assert set(groups) <= site_groups() - {"all"} == inventory_groups()
    # So the group_vars of those groups (the models, the web front end's source) apply to the VM too.
    assert all((REPO_ROOT / "group_vars" / f"{group}.yml").is_file() for group in groups)
    for members in groups.values():
        assert members == machine_names()


def ruby_setting(name: str) -> str:
    match = re.search(rf"^\s*{re.escape(name)}\s*=\s*(.+?)\s*$", VAGRANTFILE_TEXT, re.MULTILINE)
    assert match, f"{name} is not set in the Vagrantfile"
    return match.group(1)


def ruby_constant(name: str) -> str:
    return ruby_setting(name).strip('"')


def test_box_is_a_pinned_ubuntu_lts() -> None:
    assert ruby_constant("TFSTACK_BOX") in {"bento/ubuntu-24.04", "bento/ubuntu-22.04"}
    assert re.fullmatch(r"\d{6}\.\d+\.\d+", ruby_constant("TFSTACK_BOX_VERSION"))
    assert ruby_setting("config.vm.box") == "TFSTACK_BOX"
    assert ruby_setting("config.vm.box_version") == "TFSTACK_BOX_VERSION"
    assert ruby_setting("config.vm.hostname").strip('"')
    assert re.search(r'config\.vm\.synced_folder\s+"\.",\s*"/vagrant",\s*disabled:\s*true', VAGRANTFILE_TEXT)


def test_both_providers_get_memory_and_cpus() -> None:
    assert ruby_constant("TFSTACK_MEMORY_MB") == "4096"
    for provider, var in (("virtualbox", "vb"), ("libvirt", "lv")):
        pattern = rf'config\.vm\.provider\s+"{provider}"\s+do\s+\|{var}\|(.*?)\n  end'
        block = re.search(pattern, VAGRANTFILE_TEXT, re.DOTALL)
        assert block, f"no {provider} block"
        assert re.search(rf"^\s*{var}\.memory\s*=\s*TFSTACK_MEMORY_MB$", block.group(1), re.MULTILINE)
        assert re.search(rf"^\s*{var}\.cpus\s*=\s*TFSTACK_CPUS$", block.group(1), re.MULTILINE)


def test_provisioner_runs_site_yml_with_the_repository_config() -> None:
    assert re.search(r'config\.vm\.provision\s+"ansible"\s+do\s+\|ansible\|', VAGRANTFILE_TEXT)
    assert ruby_setting("ansible.compatibility_mode") == '"2.0"'
    for setting in ("ansible.playbook", "ansible.config_file"):
        path = ruby_setting(setting).strip('"')
        assert (REPO_ROOT / path).is_file(), f"{setting} names {path}, which does not exist"
    assert ruby_setting("ansible.playbook") == '"site.yml"'


def test_extra_vars_default_to_the_official_repository_with_the_pinned_key() -> None:
    defaults = load_yaml("roles", "tensorflow_serving", "defaults", "main.yml")
    block = re.search(r"ansible\.extra_vars\s*=\s*\{(.*?)\}", VAGRANTFILE_TEXT, re.DOTALL)
    assert block
    extra_vars = dict(re.findall(r'"(\w+)"\s*=>\s*(\w+)', block.group(1)))
    # A renamed role variable would turn these into silent no-ops.
    assert set(extra_vars) <= set(defaults), set(extra_vars) - set(defaults)

    def env_default(constant: str) -> str:
        pattern = rf'^{constant}\s*=\s*ENV\.fetch\(\s*"\w+",\s*"([^"]+)"\s*\)'
        match = re.search(pattern, VAGRANTFILE_TEXT, re.MULTILINE)
        assert match, f"{constant} is not an ENV.fetch with a default"
        return match.group(1)

    values = {name: env_default(constant) for name, constant in extra_vars.items()}
    assert values["tensorflow_serving_apt_repo_url"] == defaults["tensorflow_serving_apt_repo_url"]
    fingerprint = "tensorflow_serving_apt_key_fingerprint"
    assert values[fingerprint] == defaults[fingerprint]
    # The official key, over HTTPS (the role's default derives it from the plain-HTTP repository URL).
    assert values["tensorflow_serving_apt_key_url"] == (
        "https://storage.googleapis.com/tensorflow-serving-apt/tensorflow-serving.release.pub.gpg"
    )
