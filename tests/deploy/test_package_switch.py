"""Switching between the two builds of the server (tensorflow-model-server and -universal, which
conflict) through the role, and back: the other build is removed, the server restarts on the new one
and serves its models again. The stand-in's Python runtime (its postinst's virtual environment) goes
along with the switch instead of being built again, and purging the removed build leaves it alone."""

from __future__ import annotations

import pytest

from tests.deploy.deploy_support import MODELS, box_shell, models_available

pytestmark = [pytest.mark.box, pytest.mark.slow]

PHASES = "tfserving_install,tfserving_service,tfserving_verify"
# The stand-in's virtual environment; the same inode of its pyvenv.cfg after a switch means it was moved
# back (standin_repo/debian/postrm and postinst), not built again.
RUNTIME = "/usr/lib/tensorflow-model-server-standin/venv"


def installed(host, package: str) -> bool:
    return host.package(package).is_installed


def builds(host) -> tuple[str, str]:
    """The build auto picks on this CPU, and the other one."""
    has_avx = host.run("grep -qw avx /proc/cpuinfo").rc == 0
    pair = ("tensorflow-model-server", "tensorflow-model-server-universal")
    return pair if has_avx else pair[::-1]


@pytest.fixture
def back_to_auto(converged_box, host):
    """The test switches back itself; this puts the automatic build back when it did not get there."""
    yield
    if not installed(host, builds(host)[0]):
        converged_box.converge("site.yml", "--tags", PHASES)


def runtime_inode(host) -> str:
    return box_shell(host, f"stat -c %i {RUNTIME}/pyvenv.cfg").strip()


def test_switching_to_the_other_build_and_back(converged_box, host, back_to_auto) -> None:
    current, other = builds(host)
    runtime = runtime_inode(host)

    run = converged_box.run("site.yml", "--tags", PHASES, extra_vars={"tensorflow_serving_package": other})

    assert run.returncode == 0, run.output[-3000:]
    assert installed(host, other) and not installed(host, current)
    assert models_available(*MODELS)
    assert runtime_inode(host) == runtime, "the switch built the stand-in's runtime again"

    back = converged_box.run("site.yml", "--tags", PHASES)

    assert back.returncode == 0, back.output[-3000:]
    assert installed(host, current) and not installed(host, other)
    assert models_available(*MODELS)
    assert runtime_inode(host) == runtime, "the switch back built the stand-in's runtime again"

    # The removed build is left in dpkg's config-files state; purging it must not take the runtime the
    # installed build runs from.
    box_shell(host, f"dpkg --purge {other}")
    box_shell(host, f"{RUNTIME}/bin/python -c 'import tfserving_standin'")
