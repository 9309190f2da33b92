"""Server-rendered pages: the customer's public pages (survey answers, their own
success plan) and the success team's dashboard."""

from pathlib import Path

from fastapi.templating import Jinja2Templates

from models.signals import readable

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["num"] = readable
STATIC_DIR = Path(__file__).parent / "static"
