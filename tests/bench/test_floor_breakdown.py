"""summary.floor_breakdown: the web front end's p50 beside the floors under it, from summarized cells."""

from __future__ import annotations

import pytest

from tfstack_bench.load import CellResult
from tfstack_bench.summary import GUNICORN_FLOOR, RELAY_FLOOR, floor_breakdown, summarize

# p50 (the middle of three latencies) per path at 1 client; 8 clients are slower, to catch the wrong level.
ONE_CLIENT_P50 = {"rest": 1.6, "grpc": 1.5, GUNICORN_FLOOR: 0.5, "web-grpc": 3.3}
# The relay (hop and gRPC call, measured) is slower than the sum of its parts, as on 2 busy cores.
RELAY_P50 = {RELAY_FLOOR: 2.2}


def _cells(p50s: dict[str, float]) -> list[CellResult]:
    cells = []
    for path, p50 in p50s.items():
        cells.append(CellResult(1, 1, path, latencies_ms=[p50 - 0.1, p50, p50 + 5.0]))
        cells.append(CellResult(1, 8, path, latencies_ms=[10 * p50] * 3))
    return cells


def test_the_breakdown_adds_the_floors_to_the_call_and_leaves_the_rest_to_the_app() -> None:
    floor = floor_breakdown(summarize(_cells(ONE_CLIENT_P50)), "web-grpc")
    assert floor is not None
    assert (floor.clients, floor.web_path, floor.call_path) == (1, "web-grpc", "grpc")
    assert floor.rest_ms == pytest.approx(1.6)
    assert floor.call_ms == pytest.approx(1.5)
    assert floor.web_ms == pytest.approx(3.3)
    assert floor.relay_floor_ms is None
    assert floor.hop_and_call_ms == pytest.approx(0.5 + 1.5)
    assert floor.app_own_ms == pytest.approx(3.3 - 0.5 - 1.5)
    assert "estimate" in floor.app_own_basis
    numbers = floor.as_dict()
    assert numbers["hop_and_call_over_rest"] == pytest.approx(2.0 / 1.6)
    assert numbers["relay_floor_over_rest"] is None
    assert numbers["web_over_rest"] == pytest.approx(3.3 / 1.6)


def test_with_the_relay_measured_the_app_is_what_the_web_path_adds_to_it() -> None:
    floor = floor_breakdown(summarize(_cells({**ONE_CLIENT_P50, **RELAY_P50})), "web-grpc")
    assert floor is not None
    assert floor.relay_floor_ms == pytest.approx(2.2)
    assert floor.app_own_ms == pytest.approx(3.3 - 2.2)
    assert floor.app_own_basis == f"web-grpc - {RELAY_FLOOR}"
    assert floor.as_dict()["relay_floor_over_rest"] == pytest.approx(2.2 / 1.6)
    # A front end calling over REST is not measured against a gRPC relay.
    rows = summarize(_cells({**ONE_CLIENT_P50, **RELAY_P50}))
    over_rest = floor_breakdown(rows, "web-grpc", call_path="rest")
    assert over_rest is not None and over_rest.relay_floor_ms is None


def test_the_call_path_follows_the_front_ends_transport() -> None:
    floor = floor_breakdown(summarize(_cells(ONE_CLIENT_P50)), "web-grpc", call_path="rest")
    assert floor is not None
    assert floor.hop_and_call_ms == pytest.approx(0.5 + 1.6)


@pytest.mark.parametrize("missing", sorted(ONE_CLIENT_P50))
def test_no_breakdown_without_every_path_it_needs(missing: str) -> None:
    p50s = {path: p50 for path, p50 in ONE_CLIENT_P50.items() if path != missing}
    assert floor_breakdown(summarize(_cells(p50s)), "web-grpc") is None


def test_no_breakdown_from_a_path_that_answered_nothing() -> None:
    cells = [*_cells(ONE_CLIENT_P50), CellResult(1, 1, "web-rest", errors=3)]
    rows = summarize(cells)
    assert floor_breakdown(rows, "web-grpc") is not None
    assert floor_breakdown(rows, "web-rest") is None
