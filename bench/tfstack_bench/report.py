"""The run's files: `report.md` rendered with Jinja2 from the project's `templates/bench/report.md.j2`,
and `results.json` with every number the report was made from."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jinja2

from tfstack_bench.machine import NO_LATENCY_LIMIT_US

TEMPLATE = "bench/report.md.j2"
# bench/tfstack_bench/report.py -> the repository (the package is installed editable from it).
REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATES = REPOSITORY / "templates"


class ReportError(Exception):
    pass


def _number(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def render(templates: Path, context: dict[str, Any]) -> str:
    if not (templates / TEMPLATE).is_file():
        raise ReportError(f"no {TEMPLATE} in {templates}; pass --templates <repository>/templates")
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Markdown, not HTML
    )
    environment.filters["num"] = _number
    environment.filters["ratio"] = _ratio
    environment.globals["no_latency_limit_us"] = NO_LATENCY_LIMIT_US
    return environment.get_template(TEMPLATE).render(**context)


def _json_ready(value: Any) -> Any:
    """NaN is not JSON: it becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    return value


def write_json(output: Path, results: dict[str, Any]) -> Path:
    """Written first, so the numbers survive a report that fails to render."""
    output.mkdir(parents=True, exist_ok=True)
    json_path = output / "results.json"
    json_path.write_text(json.dumps(_json_ready(results), indent=1, allow_nan=False) + "\n")
    return json_path


def write_report(output: Path, templates: Path, context: dict[str, Any]) -> Path:
    try:
        rendered = render(templates, context)
    except jinja2.TemplateError as error:
        raise ReportError(f"{templates / TEMPLATE}: {error}") from None
    report_path = output / "report.md"
    report_path.write_text(rendered)
    return report_path
