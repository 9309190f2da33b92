"""One JSON shape for every error: {"error": {"status", "code", "message", "field"}}.
No stack traces leave the server; something that does not exist is a 404."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

log = logging.getLogger("tandem.api")


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.body = ErrorBody(status=status, code=code, message=message, field=field)


def not_found(what: str, ref: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what} {ref!r}")


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid",
    429: "rate_limited",
}


DOCUMENTED = {
    400: "the request body cannot be read (not JSON, not gzip, or too large)",
    401: "no valid API token",
    403: "the token's role may not do this",
    404: "no such thing",
    422: "invalid request, or a refusal by the lifecycle",
    429: "too many requests",
    503: "Temporal is unreachable",
}


# A batch of thousands with the same mistake is one problem repeated: the answer lists
# the first few and counts the rest, rather than growing to hundreds of kilobytes.
MAX_LISTED = 20


def error_response(body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": body.model_dump()}, status_code=body.status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.body)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, error: HTTPException) -> JSONResponse:
        code = _CODES.get(error.status_code, "error")
        body = ErrorBody(status=error.status_code, code=code, message=str(error.detail))
        return error_response(body, headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        broken = next((e for e in problems if e.get("type") == "json_invalid"), None)
        if broken is not None:  # its loc is ("body", offset): no field to name
            offset = broken["loc"][-1] if broken.get("loc") else "?"
            message = f"the request body is not valid JSON (at character {offset})"
            return error_response(ErrorBody(status=422, code="invalid", message=message))
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        location = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(location) or None
        listed = [
            f"{'.'.join(str(p) for p in e['loc'] if p not in ('body', 'query', 'path'))}: "
            # Our own validators' messages read better without pydantic's "Value error, ".
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in problems[:MAX_LISTED]
        ]
        if len(problems) > MAX_LISTED:
            listed.append(f"and {len(problems) - MAX_LISTED} more problems")
        message = "; ".join(listed)
        return error_response(ErrorBody(status=422, code="invalid", message=message, field=field))

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, error: DataError) -> JSONResponse:
        # e.g. a NUL character, which PostgreSQL text cannot hold: the input is at fault.
        message = "the request holds a value the records cannot store (such as a NUL character)"
        return error_response(ErrorBody(status=422, code="invalid", message=message))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=error)
        body = ErrorBody(status=500, code="internal", message="internal error; see the server log")
        return error_response(body)
