"""Switching between the two builds of the server (tensorflow-model-server and -universal, which
conflict) through the role, and back: the other build is removed, the server restarts on the new one
and serves its models again."""

from __future__ import annotations

import pytest
from deploy_support import models_available

pytestmark = [pytest.mark.box, pytest.mark.slow]

PHASES = "tfserving_install,tfserving_service,tfserving_verify"


def installed(host, package: str) -> bool:
    return host.package(package).is_installed


@pytest.fixture
def back_to_auto(converged_box):
    yield
    run = converged_box.run("site.yml", "--tags", PHASES)
    assert run.returncode == 0, run.output[-3000:]


def test_switching_to_universal_and_back(converged_box, host, back_to_auto) -> None:
    has_avx = host.run("grep -qw avx /proc/cpuinfo").rc == 0
    other = "tensorflow-model-server-universal" if has_avx else "tensorflow-model-server"
    current = "tensorflow-model-server" if has_avx else "tensorflow-model-server-universal"

    run = converged_box.run("site.yml", "--tags", PHASES, extra_vars={"tensorflow_serving_package": other})

    assert run.returncode == 0, run.output[-3000:]
    assert installed(host, other) and not installed(host, current)
    assert models_available("digits", "half_plus_two")
