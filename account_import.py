"""Existing accounts from a CSV file (`tandem import`, `POST /customers/import`).

Every row is checked before anything starts: a file with any bad row starts nothing,
and each problem names its line and column. Each good row then starts the account's
lifecycle mid-term by update-with-start, as sign-up does, so importing the same file
again finds every lifecycle running and changes nothing.

Columns: external_id, company, contacts, term_start, term_end (required); plan, owner,
mrr, onboarded (optional); header names in any case. `contacts` is `Name <email>
role+role; ...`, the first the account's primary contact (admin and champion unless roles
are given); `owner` is an active success manager's email; `onboarded` is yes or no (yes
when empty); dates are YYYY-MM-DD. The file is UTF-8 (a byte-order mark is fine) with
commas between fields.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from db.contacts import ContactError, normalize_email
from db.staff import is_staff
from lifecycles import import_account
from models.contacts import SIGNUP_ROLES, ContactRole
from models.customer import SignUp
from models.imports import ImportedAccount, ImportedContact
from models.plan import PlanTemplate
from models.roles import Role
from models.tasks import describe_validation_error
from plans import PlanError, load_plan

REQUIRED = ("external_id", "company", "contacts", "term_start", "term_end")
OPTIONAL = ("plan", "owner", "mrr", "onboarded")
# What a sign-up's field is called in the file.
_COLUMN_OF = {"contact_name": "contacts", "email": "contacts"}
_CONTACT = re.compile(r"^\s*(?P<name>[^<]+?)\s*<(?P<email>[^>]+)>\s*(?P<roles>[\w+ ]*)\s*$")
_YES, _NO = {"", "yes", "y", "true", "1"}, {"no", "n", "false", "0"}
# Only the documented form: `date.fromisoformat` also takes 20260101 and 2027-W10-1,
# which a spreadsheet's dates never are and a typo may be.
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# What a spreadsheet saved with another separator puts between the columns. The comma is
# not sniffed (csv.Sniffer): the contacts column holds `;` between contacts, so a real
# comma-separated file with a few contacts can look semicolon-separated to it.
_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "bars"}
_SAVE_AS_UTF8 = 'save it as UTF-8 (in Excel: "CSV UTF-8 (Comma delimited)")'


class Problem(BaseModel):
    line: int = Field(description="the file's line (the header is line 1)")
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.message}"


class ImportRow(BaseModel):
    line: int
    signup: SignUp
    plan: PlanTemplate
    account: ImportedAccount


class ImportReport(BaseModel):
    rows: int = Field(description="accounts in the file")
    started: int = Field(default=0, description="lifecycles started by this import")
    unchanged: int = Field(default=0, description="accounts whose lifecycle was running already")
    dry_run: bool = False
    problems: list[Problem] = Field(default_factory=list)


def decode(data: bytes) -> str:
    """The file's text, or a ValueError naming the line that is not UTF-8."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16's byte-order marks
        raise ValueError(f"the file is UTF-16, not UTF-8: {_SAVE_AS_UTF8}")
    if data.startswith(b"PK\x03\x04"):  # a zip: what an .xlsx is
        raise ValueError(f"the file is a workbook (.xlsx), not CSV: {_SAVE_AS_UTF8}")
    if b"\x00" in data[:1000]:
        # UTF-16 without its mark: it would decode as UTF-8, NULs between the letters.
        raise ValueError(f"the file holds NUL bytes (UTF-16, perhaps), not UTF-8: {_SAVE_AS_UTF8}")
    try:
        return data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start : error.start + 1].hex()
        raise ValueError(
            f"line {line}: byte 0x{byte} is not UTF-8 (Latin-1 or Windows-1252, perhaps): "
            f"the file must be UTF-8; {_SAVE_AS_UTF8}"
        ) from None


def parse_contacts(text: str) -> list[ImportedContact]:
    """`Name <email> role+role; ...`: the first is the primary contact."""
    contacts: list[ImportedContact] = []
    for n, part in enumerate(p for p in text.split(";") if p.strip()):
        match = _CONTACT.match(part)
        if match is None:
            raise ValueError(f"{part.strip()!r} is not `Name <email> role+role`")
        named = [r.strip().lower() for r in match["roles"].split("+") if r.strip()]
        unknown = [r for r in named if r not in ContactRole.__members__]
        if unknown:
            known = ", ".join(ContactRole)
            raise ValueError(f"no role {unknown[0]!r} (roles: {known})")
        try:
            email = normalize_email(match["email"])
        except ContactError as error:
            raise ValueError(f"{match['email']!r}: {error}") from None
        if any(c.email == email for c in contacts):
            raise ValueError(f"{email} is listed twice")
        default = [r.value for r in SIGNUP_ROLES] if n == 0 else [ContactRole.user.value]
        contacts.append(ImportedContact(name=match["name"], email=email, roles=named or default))
    if not contacts:
        raise ValueError("at least one contact, `Name <email>`")
    return contacts


def _day(value: str) -> datetime:
    try:
        day = date.fromisoformat(value.strip()) if _DATE.match(value.strip()) else None
    except ValueError:  # 2026-13-01
        day = None
    if day is None:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")
    return datetime.combine(day, datetime.min.time(), UTC)


class _Row:
    """One row's values and the problems found in them."""

    def __init__(self, line: int, values: dict[str, str], problems: list[Problem]) -> None:
        self.line, self.values, self.problems = line, values, problems

    def get(self, column: str) -> str:
        return (self.values.get(column) or "").strip()

    def problem(self, column: str, message: str) -> None:
        self.problems.append(Problem(line=self.line, column=column, message=message))


def check_file(
    text: str, engine: Engine, plans_dir: Path | None, today: datetime, source: str
) -> tuple[list[ImportRow], list[Problem]]:
    """Every row checked; the good rows, and every problem of the bad ones."""
    reader = csv.DictReader(io.StringIO(text))
    # `External_ID ` is external_id: spreadsheets capitalise and pad headers.
    header = [c.strip().lower() for c in reader.fieldnames or []]
    reader.fieldnames = header
    problems = _header_problems(header)
    if problems:
        return [], problems
    rows: list[ImportRow] = []
    seen: dict[str, int] = {}
    plans: dict[str, PlanTemplate | str] = {}
    with Session(engine) as session:
        line = 1
        for values in reader:
            row = _Row(line + 1, values, problems)
            line = reader.line_num
            extra = values.get(None)  # DictReader keeps fields beyond the header under None
            if extra:
                # The rest of the row is shifted: checking its values would only mislead.
                fields = len(header) + len(extra)
                row.problem(
                    "row",
                    f"{fields} fields where the header has {len(header)} "
                    "(probably an unquoted comma: put a value holding one in double quotes)",
                )
                continue
            checked = _check_row(row, session, plans, plans_dir, today, source)
            external_id = row.get("external_id").lower()
            if external_id in seen:
                row.problem("external_id", f"also on line {seen[external_id]}")
            seen.setdefault(external_id, row.line)
            if checked is not None and not any(p.line == row.line for p in problems):
                rows.append(checked)
    return rows, problems


def _header_problems(header: list[str]) -> list[Problem]:
    if len(header) == 1:
        for delimiter, name in _OTHER_DELIMITERS.items():
            if delimiter in header[0]:
                message = f"the columns are separated by {name}: the delimiter must be a comma"
                return [Problem(line=1, column="header", message=message)]
    problems = []
    for column in REQUIRED:
        if column not in header:
            problems.append(Problem(line=1, column=column, message="missing column"))
    for column in sorted({c for c in header if header.count(c) > 1}):
        problems.append(Problem(line=1, column=column, message="repeated column"))
    for column in header:
        if column not in REQUIRED + OPTIONAL:
            known = ", ".join(REQUIRED + OPTIONAL)
            problems.append(Problem(line=1, column=column, message=f"unknown (columns: {known})"))
    return problems


def _check_row(
    row: _Row,
    session: Session,
    plans: dict[str, PlanTemplate | str],
    plans_dir: Path | None,
    today: datetime,
    source: str,
) -> ImportRow | None:
    for column in REQUIRED:
        if not row.get(column):
            row.problem(column, "required")
    try:
        contacts = parse_contacts(row.get("contacts")) if row.get("contacts") else []
    except ValueError as error:
        row.problem("contacts", str(error))
        contacts = []
    dates: dict[str, datetime] = {}
    for column in ("term_start", "term_end"):
        if row.get(column):
            try:
                dates[column] = _day(row.get(column))
            except ValueError as error:
                row.problem(column, str(error))
    if "term_start" in dates and dates["term_start"] > today:
        row.problem("term_start", "in the future: sign the account up when its term starts")
    if "term_end" in dates and dates["term_end"] <= today:
        row.problem("term_end", "in the past: the term is over")
    mrr = None
    if row.get("mrr"):
        try:
            amount = float(row.get("mrr"))
        except ValueError:
            amount = math.nan
        if math.isfinite(amount) and amount >= 0:
            mrr = amount
        else:
            row.problem("mrr", f"{row.get('mrr')!r} is not an amount of at least 0")
    onboarded = row.get("onboarded").lower()
    if onboarded not in _YES | _NO:
        row.problem("onboarded", f"{row.get('onboarded')!r}: yes or no")
    owner = row.get("owner").lower() or None
    if owner and not is_staff(session, owner, Role.manager):
        row.problem("owner", f"{owner} is not an active success manager (`tandem staff list`)")
    plan = _plan(row.get("plan") or "default", plans, plans_dir)
    if isinstance(plan, str):
        row.problem("plan", plan)
    signup = None
    if contacts and row.get("external_id") and row.get("company"):
        try:
            signup = SignUp(
                company=row.get("company"),
                contact_name=contacts[0].name,
                email=contacts[0].email,
                plan=row.get("plan") or "default",
                external_id=row.get("external_id"),
                owner=owner,
            )
        except ValidationError as error:
            for problem in error.errors():
                field = str(problem["loc"][0]) if problem["loc"] else "value"
                message = problem["msg"].removeprefix("Value error, ")
                row.problem(_COLUMN_OF.get(field, field), message)
    if signup is None or isinstance(plan, str) or len(dates) < 2:
        return None
    try:
        account = ImportedAccount(
            term_start=dates["term_start"],
            term_end=dates["term_end"],
            onboarded=onboarded not in _NO,
            mrr=mrr,
            contacts=contacts,
            source=source,
        )
    except ValidationError as error:
        row.problem("term_end", describe_validation_error(error).partition(": ")[2])
        return None
    return ImportRow(line=row.line, signup=signup, plan=plan, account=account)


def _plan(
    name: str, plans: dict[str, PlanTemplate | str], plans_dir: Path | None
) -> PlanTemplate | str:
    """The plan by its name, or why not (read once per import)."""
    if name not in plans:
        try:
            plans[name] = load_plan(name, plans_dir)
        except PlanError as error:
            plans[name] = str(error)
    return plans[name]


async def start_accounts(
    client: Client,
    rows: list[ImportRow],
    task_queue: str,
    done: Callable[[ImportRow, bool], Awaitable[None] | None] | None = None,
) -> tuple[int, int]:
    """Start each row's lifecycle (or find it running); (started, unchanged)."""
    started = unchanged = 0
    for row in rows:
        receipt = await import_account(client, row.signup, row.plan, row.account, task_queue)
        started, unchanged = started + receipt.new, unchanged + (not receipt.new)
        if done is not None:
            waited = done(row, receipt.new)
            if waited is not None:
                await waited
    return started, unchanged
