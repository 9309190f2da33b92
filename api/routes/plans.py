"""Plan templates: list, show, and validate a candidate (admins)."""

from __future__ import annotations

import tomllib
from typing import Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ValidationError

from api.deps import AdminDep, PrincipalDep, SettingsDep
from api.errors import ApiError, not_found
from models.plan import PlanTemplate
from models.tasks import describe_validation_error
from plans import PlanError, load_plan, plan_files

router = APIRouter(prefix="/plans", tags=["plans"])


class PlanSummary(BaseModel):
    name: str
    version: int
    description: str


class Validation(BaseModel):
    valid: bool
    plan: str | None = None
    errors: list[str] = []


@router.get("", response_model=list[PlanSummary])
def list_plans(settings: SettingsDep, _: PrincipalDep) -> list[PlanSummary]:
    summaries = []
    for name in plan_files(settings.plans_dir):
        try:
            plan = load_plan(name, settings.plans_dir)
        except PlanError:
            continue  # a broken file is reported by validate, not hidden in a 500
        summaries.append(PlanSummary(**plan.model_dump(include={"name", "version", "description"})))
    return summaries


@router.get("/{name}", response_model=PlanTemplate)
def show_plan(name: str, settings: SettingsDep, _: PrincipalDep) -> PlanTemplate:
    if name not in plan_files(settings.plans_dir):
        raise not_found("plan", name)
    try:
        return load_plan(name, settings.plans_dir)
    except PlanError as error:
        raise ApiError(422, "invalid_plan", str(error)) from None


@router.post("/validate", response_model=Validation)
def validate_plan(
    _: AdminDep,
    toml: str = Body(media_type="text/plain", description="the plan file's TOML text"),
) -> Validation:
    try:
        data: dict[str, Any] = tomllib.loads(toml)
        plan = PlanTemplate.model_validate(data)
    except tomllib.TOMLDecodeError as error:
        return Validation(valid=False, errors=[f"not valid TOML: {error}"])
    except ValidationError as error:
        return Validation(valid=False, errors=describe_validation_error(error).split("; "))
    return Validation(valid=True, plan=plan.label)
