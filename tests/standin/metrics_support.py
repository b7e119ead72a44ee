"""Turning the stand-in's metrics on, and reading its Prometheus page the way a scraper does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

METRICS_PATH = "/monitoring/prometheus/metrics"
MONITORING_CONFIG = f'prometheus_config {{ enable: true, path: "{METRICS_PATH}" }}\n'


def monitoring_flag(folder: Path) -> str:
    """The server flag that serves metrics at METRICS_PATH, with its config written into `folder`."""
    config = folder / "monitoring.config"
    config.write_text(MONITORING_CONFIG)
    return f"--monitoring_config_file={config}"


@dataclasses.dataclass(frozen=True)
class Scrape:
    text: str
    # sample name as written on the page -> list of (labels, value)
    samples: dict[str, list[tuple[dict[str, str], float]]]
    types: dict[str, str]

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels; 0 when it is absent (a counter not yet incremented)."""
        return next((value for found, value in self.samples.get(name, []) if found == labels), 0.0)

    def label_names(self, name: str) -> set[frozenset[str]]:
        return {frozenset(labels) - {"le"} for labels, _ in self.samples.get(name, [])}


def scrape(rest_url: str) -> Scrape:
    response = requests.get(f"{rest_url}{METRICS_PATH}", timeout=30)
    assert response.status_code == 200, response.text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    types = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            # The parser names counter samples <name>_total; the page (and Prometheus) has <name>.
            name = family.name if family.type == "counter" else sample.name
            samples.setdefault(name, []).append((sample.labels, sample.value))
    return Scrape(response.text, samples, types)
