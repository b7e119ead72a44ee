"""Provisioning converges: the first run on a fresh box changes things, a rerun and a check-mode run on
the converged box change nothing (reliability cases 1 and 2). The reruns are the documented commands
as a user types them after `make up`, `ansible-playbook -i <inventory> site.yml` (and
playbooks/models.yml) with no -e: the repository choice comes from the group vars recorded beside the
box's inventory."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.box, pytest.mark.slow]


def test_first_run_provisions_without_failure(first_run) -> None:
    assert first_run.recap["failed"] == 0
    assert first_run.recap["changed"] > 0, "a first run on a fresh box must change something"


@pytest.mark.parametrize("playbook", ["site.yml", "playbooks/models.yml"])
def test_the_plain_rerun_changes_nothing(converged_box, playbook: str) -> None:
    run = converged_box.run(playbook)
    assert run.returncode == 0, run.output[-4000:]
    assert run.recap["changed"] == 0, "\n".join(run.changed_tasks())


def test_check_mode_on_the_converged_box_reports_no_change(converged_box) -> None:
    run = converged_box.run("site.yml", "--check", "--diff")
    assert run.returncode == 0, run.output[-4000:]
    assert run.recap["failed"] == 0
    assert run.recap["changed"] == 0, "\n".join(run.changed_tasks())
