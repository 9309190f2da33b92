"""The HTML report: one self-contained page (inline CSS and SVG, no scripts), rendered by
jinja2 with autoescape from the same dict that is written as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from simulation.results import QUADRANTS

TEMPLATES = Path(__file__).parent / "templates"
COLOURS = {
    "happy_profitable": "#2e7d32",
    "unhappy_profitable": "#ef6c00",
    "happy_unprofitable": "#1565c0",
    "unhappy_unprofitable": "#c62828",
    "neutral": "#9e9e9e",
    "unknown": "#d7d7d7",
    "churned": "#424242",
}
SEGMENT_COLOURS = [
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
    "#1f78b4",
    "#b2df8a",
]
AREA_W, AREA_H, PAD = 560.0, 240.0, 36.0
SCATTER = 300.0


def _points(pairs: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pairs)


def migration_chart(run: dict[str, Any], customers: int) -> dict[str, Any]:
    """A stacked area of customers per quadrant per month, churned on top."""
    months = run["months"]
    layers = [*QUADRANTS, "churned"]
    if not months:
        return {
            "width": AREA_W + 2 * PAD,
            "height": AREA_H + 2 * PAD,
            "areas": [],
            "xticks": [],
            "yticks": [],
        }
    # One month still gets an area: its column spans the chart.
    xs = [0.0, 1.0] if len(months) == 1 else [i / (len(months) - 1) for i in range(len(months))]
    rows = months * 2 if len(months) == 1 else months
    scale = AREA_H / max(customers, 1)
    below = [0.0] * len(rows)
    areas = []
    for layer in layers:
        values = [r["churned"] if layer == "churned" else r["quadrants"][layer] for r in rows]
        above = [b + v for b, v in zip(below, values, strict=True)]
        top = [(PAD + x * AREA_W, PAD + AREA_H - a * scale) for x, a in zip(xs, above, strict=True)]
        bottom = [
            (PAD + x * AREA_W, PAD + AREA_H - b * scale) for x, b in zip(xs, below, strict=True)
        ]
        if any(values):
            areas.append(
                {"name": layer, "colour": COLOURS[layer], "points": _points(top + bottom[::-1])}
            )
        below = above
    xticks = [
        {"x": PAD + x * AREA_W, "label": str(r["month"])} for x, r in zip(xs, rows, strict=True)
    ]
    if len(months) == 1:
        xticks = xticks[:1]
    yticks = [
        {"y": PAD + AREA_H - f * AREA_H, "label": str(round(f * customers))}
        for f in (0, 0.25, 0.5, 0.75, 1)
    ]
    return {
        "width": AREA_W + 2 * PAD,
        "height": AREA_H + 2 * PAD,
        "areas": areas,
        "xticks": xticks,
        "yticks": yticks,
        "left": PAD,
        "right": PAD + AREA_W,
        "top": PAD,
        "bottom": PAD + AREA_H,
    }


def scatter_chart(run: dict[str, Any], segments: list[str]) -> dict[str, Any]:
    """Final positions: customer happiness (x) against company happiness (y), -1..1."""
    half = SCATTER / 2

    def at(value: float) -> float:
        return PAD + half + value * half

    dots = []
    for p in run["final_positions"]:
        if p["customer_score"] is None or p["company_score"] is None:
            continue
        dots.append(
            {
                "cx": at(p["customer_score"]),
                "cy": PAD + half - p["company_score"] * half,
                "colour": SEGMENT_COLOURS[segments.index(p["segment"]) % len(SEGMENT_COLOURS)],
                "hollow": p["churned"],
                "title": f"{p['customer']} ({p['segment']}): {p['quadrant']}"
                f"{', churned' if p['churned'] else ''}",
            }
        )
    return {
        "size": SCATTER + 2 * PAD,
        "pad": PAD,
        "mid": PAD + half,
        "end": PAD + SCATTER,
        "dots": dots,
        "unplaced": len(run["final_positions"]) - len(dots),
    }


def render(results: dict[str, Any]) -> str:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )
    segments = sorted({p["segment"] for r in results["runs"] for p in r["final_positions"]})
    runs = [
        {
            **run,
            "migration": migration_chart(run, results["customers"]),
            "scatter": scatter_chart(run, segments),
        }
        for run in results["runs"]
    ]
    legend = [{"name": name, "colour": colour} for name, colour in COLOURS.items()]
    segment_legend = [
        {"name": p, "colour": SEGMENT_COLOURS[i % len(SEGMENT_COLOURS)]}
        for i, p in enumerate(segments)
    ]
    return env.get_template("report.html").render(
        results=results,
        runs=runs,
        legend=legend,
        segment_legend=segment_legend,
    )
