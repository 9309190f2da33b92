"""Existing accounts from a CSV file (admins): every row checked first, a file with any
bad row starts nothing (422 listing every problem by line and column), and importing the
same file again changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from account_import import ImportReport, check_file, decode, start_accounts
from api.deps import AdminDep, ClientDep, EngineDep, SettingsDep
from api.errors import ApiError, ErrorBody
from lifecycles import SignupConflict

router = APIRouter(tags=["customers"])


class ImportRefused(ImportReport):
    """A file with problems: the API's one error shape, and the report listing them all."""

    error: ErrorBody


CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.post(
    "/customers/import",
    response_model=ImportReport,
    responses={422: {"model": ImportRefused, "description": "the file's problems"}},
    openapi_extra=CSV_BODY,
)
async def import_accounts(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    client: ClientDep,
    _: AdminDep,
    dry_run: bool = False,
) -> ImportReport | JSONResponse:
    """Start lifecycles for existing accounts mid-term, from a CSV body (columns:
    docs/contacts-and-import.md). `?dry_run=true` checks every row and starts nothing."""
    try:
        text = decode(await request.body())
    except ValueError as error:
        raise ApiError(400, "invalid", str(error)) from None
    source = request.headers.get("x-import-source", "api")[:100]
    today = datetime.now(UTC)
    rows, problems = await run_in_threadpool(
        check_file, text, engine, settings.plans_dir, today, source
    )
    bad_lines = {p.line for p in problems if p.line > 1}  # line 1: the header
    report = ImportReport(rows=len(rows) + len(bad_lines), dry_run=dry_run, problems=problems)
    if problems:
        message = f"{len(problems)} problem(s) in the file; nothing was imported"
        error = ErrorBody(status=422, code="invalid", message=message, field=problems[0].column)
        refused = ImportRefused(**report.model_dump(), error=error)
        return JSONResponse(refused.model_dump(mode="json"), status_code=422)
    if dry_run:
        return report
    try:
        report.started, report.unchanged = await start_accounts(client, rows, settings.task_queue)
    except SignupConflict as conflict:
        raise ApiError(409, "conflict", str(conflict), "external_id") from None
    return report
