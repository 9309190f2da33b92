"""Plan templates as TOML files, validated by `models.plan.PlanTemplate`.

Built-in templates sit beside this module; operators add their own in a folder named
by TANDEM_PLANS_DIR. A sign-up names a template, and only the names of the files in those
folders are plans: a path (`plans/x.toml`, `../../x.toml`) is not a name. `read_plan`
reads a file the operator points at (`tandem plans validate FILE`).
"""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path

from pydantic import ValidationError

from models.plan import EventMapping, PlanTemplate
from models.tasks import describe_validation_error

BUILT_IN = Path(__file__).parent


class PlanError(ValueError):
    """A plan that cannot be used; the message names the file and the field path."""


def read_plan(path: Path) -> PlanTemplate:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise PlanError(f"{path}: not valid TOML: {error}") from None
    try:
        return PlanTemplate.model_validate(data)
    except ValidationError as error:
        raise PlanError(f"{path}: {describe_validation_error(error)}") from None


def plan_files(extra_dir: Path | None = None) -> dict[str, Path]:
    """Plan name (the file stem) -> file; the operator's folder wins over built-ins."""
    files = {p.stem: p for p in sorted(BUILT_IN.glob("*.toml"))}
    if extra_dir is not None and extra_dir.is_dir():
        files.update({p.stem: p for p in sorted(extra_dir.glob("*.toml"))})
    return files


def load_plan(name: str, extra_dir: Path | None = None) -> PlanTemplate:
    files = plan_files(extra_dir)
    if name not in files:
        known = ", ".join(sorted(files)) or "none"
        hint = " (a plan is named, not given as a file)" if re.search(r"[/\\.]", name) else ""
        raise PlanError(f"unknown plan {name!r}{hint} (known plans: {known})")
    plan = read_plan(files[name])
    if plan.name != name:
        raise PlanError(f"{files[name]}: name is {plan.name!r}, the file says otherwise")
    return plan


_MAPPINGS: dict[tuple[str, Path | None], tuple[float, EventMapping]] = {}
MAPPING_TTL_SECONDS = 10.0  # an edited plan file counts for new events within this


def event_mapping(name: str, extra_dir: Path | None = None) -> EventMapping:
    """How the named plan's accounts' product events count, read at most every few
    seconds (ingestion asks for it per batch). An unknown or broken plan counts every
    event as its own metric: events are never refused for a plan's sake."""
    now = time.monotonic()
    cached = _MAPPINGS.get((name, extra_dir))
    if cached is not None and now - cached[0] < MAPPING_TTL_SECONDS:
        return cached[1]
    try:
        mapping = load_plan(name, extra_dir).events
    except PlanError:
        mapping = EventMapping()
    _MAPPINGS[(name, extra_dir)] = (now, mapping)
    return mapping
