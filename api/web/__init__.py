"""Server-rendered pages: the customer's public pages (survey answers, their own
success plan) and the success team's dashboard."""

from pathlib import Path

from fastapi.templating import Jinja2Templates

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _num(value: float) -> str:
    """2.0 as 2 and 1500000 as 1,500,000 (Python's %g would show 1.5e+06)."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


TEMPLATES.env.filters["num"] = _num
STATIC_DIR = Path(__file__).parent / "static"
