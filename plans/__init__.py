"""Plan templates as TOML files, validated by `models.plan.PlanTemplate`.

Built-in templates sit beside this module; operators add their own in a folder named
by TANDEM_PLANS_DIR. A template is looked up by name, or read from a path.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from models.plan import PlanTemplate
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


def load_plan(name_or_path: str, extra_dir: Path | None = None) -> PlanTemplate:
    if name_or_path.endswith(".toml"):
        return read_plan(Path(name_or_path))
    files = plan_files(extra_dir)
    if name_or_path not in files:
        known = ", ".join(sorted(files)) or "none"
        raise PlanError(f"unknown plan {name_or_path!r} (known plans: {known})")
    plan = read_plan(files[name_or_path])
    if plan.name != name_or_path:
        raise PlanError(f"{files[name_or_path]}: name is {plan.name!r}, the file says otherwise")
    return plan
