"""Switching between the two builds of the server (tensorflow-model-server and -universal, which
conflict) through the role, and back: the other build is removed, the server restarts on the new one
and serves its models again."""

from __future__ import annotations

import pytest

from tests.deploy.deploy_support import MODELS, models_available

pytestmark = [pytest.mark.box, pytest.mark.slow]

PHASES = "tfserving_install,tfserving_service,tfserving_verify"


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


def test_switching_to_the_other_build_and_back(converged_box, host, back_to_auto) -> None:
    current, other = builds(host)

    run = converged_box.run("site.yml", "--tags", PHASES, extra_vars={"tensorflow_serving_package": other})

    assert run.returncode == 0, run.output[-3000:]
    assert installed(host, other) and not installed(host, current)
    assert models_available(*MODELS)

    back = converged_box.run("site.yml", "--tags", PHASES)

    assert back.returncode == 0, back.output[-3000:]
    assert installed(host, current) and not installed(host, other)
    assert models_available(*MODELS)
