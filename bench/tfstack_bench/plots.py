"""The report's figures (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from tfstack_bench.summary import ColdStart, PathLevel

DPI = 110


def _by_path(rows: list[PathLevel]) -> dict[str, list[PathLevel]]:
    paths: dict[str, list[PathLevel]] = {}
    for row in rows:
        paths.setdefault(row.path, []).append(row)
    return {path: sorted(group, key=lambda row: row.clients) for path, group in paths.items()}


def _concurrency_axis(axes: plt.Axes, rows: list[PathLevel], ylabel: str, title: str) -> None:
    """x: the measured numbers of clients, on a log2 scale; labels, legend, grid."""
    levels = sorted({row.clients for row in rows})
    axes.set_xscale("log", base=2)
    axes.set_xticks(levels, [str(level) for level in levels])
    axes.set_xlabel("concurrent clients")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3, which="both")


def _save(figure: plt.Figure, output: Path) -> Path:
    figure.tight_layout()
    figure.savefig(output, dpi=DPI)
    plt.close(figure)
    return output


def latency_plot(rows: list[PathLevel], path_order: list[str], output: Path) -> Path:
    """Left: p50/p95/p99 of each path with one client. Right: p50 (solid) and p95 (dashed) against
    the number of concurrent clients."""
    by_path = _by_path(rows)
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    one_client = [next((row for row in by_path[path] if row.clients == 1), None) for path in path_order]
    width = 0.26
    for offset, (label, attribute) in enumerate((("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))):
        values = [getattr(row, attribute) if row else 0 for row in one_client]
        left.bar([i + (offset - 1) * width for i in range(len(path_order))], values, width, label=label)
    left.set_xticks(range(len(path_order)), path_order, rotation=20, ha="right")
    left.set_ylabel("latency (ms)")
    left.set_title("one client: latency percentiles per path")
    left.legend()
    left.grid(axis="y", alpha=0.3)
    for index, path in enumerate(path_order):
        group = by_path[path]
        clients = [row.clients for row in group]
        colour = f"C{index}"
        right.plot(clients, [row.p50_ms for row in group], "o-", color=colour, label=f"{path} p50")
        right.plot(clients, [row.p95_ms for row in group], "--", color=colour, alpha=0.7)
    right.set_yscale("log")
    _concurrency_axis(right, rows, "latency (ms, log)", "p50 (solid) and p95 (dashed) against concurrency")
    return _save(figure, output)


def throughput_plot(rows: list[PathLevel], path_order: list[str], output: Path) -> Path:
    """Requests per second against concurrent clients; the bars span the rounds' lowest and highest."""
    by_path = _by_path(rows)
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    for index, path in enumerate(path_order):
        group = by_path[path]
        clients = [row.clients for row in group]
        values = [row.throughput for row in group]
        low = [value - min(row.throughput_per_round) for value, row in zip(values, group, strict=True)]
        high = [max(row.throughput_per_round) - value for value, row in zip(values, group, strict=True)]
        axes.errorbar(clients, values, yerr=[low, high], fmt="o-", capsize=3, color=f"C{index}", label=path)
    _concurrency_axis(
        axes, rows, "requests per second", "throughput against concurrency (bars: range over rounds)"
    )
    return _save(figure, output)


def coldstart_plot(summary: list[ColdStart], output: Path) -> Path:
    """First request to a new version against the warm latency, with and without warmup records."""
    figure, axes = plt.subplots(figsize=(7, 4))
    kinds = [entry.kind for entry in summary]
    positions = range(len(kinds))
    axes.bar([p - 0.2 for p in positions], [entry.first_ms for entry in summary], 0.4, label="first request")
    axes.bar([p + 0.2 for p in positions], [entry.warm_ms for entry in summary], 0.4, label="warm (p50)")
    for position, entry in zip(positions, summary, strict=True):
        axes.annotate(
            f"AVAILABLE {entry.rollout_s:.1f} s after publishing",
            (position, max(entry.first_ms, entry.warm_ms)),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize="small",
        )
    axes.set_xticks(list(positions), kinds)
    axes.set_yscale("log")
    axes.set_ylim(top=3 * max(max(entry.first_ms, entry.warm_ms) for entry in summary))
    axes.set_ylabel("latency (ms, log)")
    axes.set_title("cold start: the first request to a new version")
    axes.legend()
    axes.grid(axis="y", alpha=0.3, which="both")
    return _save(figure, output)
