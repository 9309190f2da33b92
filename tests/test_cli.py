"""The CLI's own checks, before anything reaches Temporal: clear one-line errors,
exit code 1, nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli import app
from cli.common import engine
from db.engine import session_scope
from models.plan import ScoringSettings
from models.scoring import assess
from models.signals import Observation, SignalKind
from models.tables import AssessmentRecord, Customer, SignalRecord
from plans import BUILT_IN

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TANDEM_TEMPORAL_ADDRESS", "127.0.0.1:1")  # nothing listens there
    monkeypatch.delenv("TANDEM_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)


def test_plans_validate_accepts_the_default_plan() -> None:
    done = runner.invoke(app, ["plans", "validate", str(BUILT_IN / "default.toml")])
    assert done.exit_code == 0 and "valid plan default@v1 with 3 tutorials" in done.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\n[renewal]\nlead_days = 400\n', "lead_days must be shorter than term_days"),
        ('name = "x"\n[scoring.weights]\nnps = -1\n', "scoring.weights.nps: Input should be"),
        ('name = "x"\n[reviews]\ncheckin_every = 3\n', "reviews.checkin_every: Extra inputs"),
        ('name = "x"\n[onboarding\n', "not valid TOML"),
    ],
)
def test_plans_validate_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    plan = tmp_path / "bad.toml"
    plan.write_text(text)
    done = runner.invoke(app, ["plans", "validate", str(plan)])
    assert done.exit_code == 1 and message in done.output


def test_signup_refuses_bad_input_before_contacting_temporal() -> None:
    bad_email = runner.invoke(
        app, ["signup", "--company", "Acme", "--contact-name", "Ada", "--email", "ada@"]
    )
    assert bad_email.exit_code == 1 and "email:" in bad_email.output
    blank = runner.invoke(
        app, ["signup", "--company", "  ", "--contact-name", "Ada", "--email", "a@acme.test"]
    )
    assert blank.exit_code == 1 and "company: must not be blank" in blank.output
    plan = runner.invoke(
        app,
        [
            "signup",
            "--company",
            "A",
            "--contact-name",
            "B",
            "--email",
            "a@acme.test",
            "--plan",
            "platinum",
        ],
    )
    assert (
        plan.exit_code == 1
        and "unknown plan 'platinum' (known plans: default, high_touch)" in plan.output
    )


def test_unreachable_temporal_is_one_clear_line() -> None:
    done = runner.invoke(
        app, ["signup", "--company", "A", "--contact-name", "B", "--email", "a@acme.test"]
    )
    assert done.exit_code == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in done.output and "make run" in done.output


def test_unknown_customer_and_bad_result_file(tmp_path: Path) -> None:
    shown = runner.invoke(app, ["show", "nobody"])
    assert shown.exit_code == 1
    assert "no customer 'nobody' (try `tandem customers`)" in shown.output
    result = tmp_path / "r.json"
    result.write_text("{not json")
    done = runner.invoke(app, ["complete", "x:t1:kickoff", "--result", str(result)])
    assert done.exit_code == 1 and "not valid JSON" in done.output
    missing = runner.invoke(app, ["complete", "x:t1:kickoff", "--result", str(tmp_path / "no")])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_result_example_and_email_preview() -> None:
    example = runner.invoke(app, ["result-example", "renewal"])
    assert example.exit_code == 0 and '"outcome": "renewed"' in example.output
    preview = runner.invoke(app, ["emails", "preview", "renewal_invite"])
    assert preview.exit_code == 0 and preview.output.startswith("Subject: ")
    unknown = runner.invoke(app, ["emails", "preview", "newsletter"])
    assert unknown.exit_code == 1 and "welcome" in unknown.output


def add_acme(session: Session, now: datetime) -> None:
    """An account in the records, as a lifecycle would have stored it."""
    session.add(
        Customer(
            id="acme", company="Acme", contact_name="Ada", email="ada@acme.test",
            plan_name="default", plan_version=1, phase="adopting", term_start=now, term_end=now,
        )
    )  # fmt: skip
    session.flush()


def test_show_explains_the_latest_assessment_and_marks_an_estimated_cost() -> None:
    now = datetime(2026, 4, 1, tzinfo=UTC)

    def seen(kind: str, value: float) -> Observation:
        return Observation(kind=SignalKind(kind), value=value, observed_at=now - timedelta(days=10))

    # Revenue but no recorded cost: the plan's cost to serve stands in for it.
    a = assess([seen("revenue", 1000), seen("tickets", 4), seen("nps", 8)], ScoringSettings(), now)
    with session_scope(engine()) as session:
        add_acme(session, now)
        session.add(
            AssessmentRecord(
                customer_id="acme", key="acme:t1:check_in-1", assessed_at=now,
                customer_score=a.customer_score, company_score=a.company_score,
                quadrant=a.quadrant.value, level=a.level, churn_risk=a.churn_risk,
                detail=a.model_dump(mode="json"),
            )
        )  # fmt: skip
    shown = runner.invoke(app, ["show", "acme"], env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    assert a.churn_risk is not None
    assert f"churn risk {a.churn_risk:.0%} within 90 days" in shown.output
    margin = next(e for e in a.explanation if e.component == "margin")
    [line] = [x for x in shown.output.splitlines() if "margin" in x]
    assert "(estimated cost)" in line and f"{margin.figure:g}" in line
    assert f"{margin.score:+.2f}" in line
    nps = next(e for e in a.explanation if e.component == "nps")
    [line] = [x for x in shown.output.splitlines() if x.split()[:1] == ["nps"]]
    assert nps.weight is not None and f"{nps.weight:.0%}" in line and "estimated" not in line


def test_signal_refuses_a_future_time_and_an_absurd_value_and_stores_nothing() -> None:
    now = datetime.now(UTC)
    records = engine()
    with session_scope(records) as session:
        add_acme(session, now)
    future = f"{now.year + 1}-12-01"  # naive, read as UTC as always
    refusals = [
        (["mrr", "99999", "--at", future], f"error: observed_at: {future}T00:00:00+00:00 is in"),
        (["mrr", "1e308"], "error: value: Input should be less than or equal to 1000000000000"),
        (["tickets", "inf"], "error: value: Input should be a finite number"),
        (["nps", "nan"], "error: value: Input should be a finite number"),
        (["nps", "8", "--at", "0001-01-01T00:00:00+14:00"], "a measurement's year is from 1970"),
        (["usage", "-5"], "error: value: usage must be at least 0, got -5"),
    ]
    for arguments, message in refusals:
        done = runner.invoke(app, ["signal", "acme", *arguments])
        assert done.exit_code == 1 and message in done.output, done.output
        assert len(done.output.strip().splitlines()) == 1
    with Session(records) as session:
        assert session.exec(select(SignalRecord)).all() == []
        assert session.get(Customer, "acme").mrr is None  # type: ignore[union-attr]
    # A past time without a zone is still read as UTC.
    done = runner.invoke(app, ["signal", "acme", "mrr", "1200", "--at", "2026-11-01T08:00:00"])
    assert done.exit_code == 0, done.output
    with Session(records) as session:
        row = session.exec(select(SignalRecord)).one()
        assert row.observed_at == datetime(2026, 11, 1, 8, tzinfo=UTC)


def test_a_usage_figure_without_a_period_says_how_it_is_read() -> None:
    """A month's count sent without --since would read as that many a day: the command
    says so; with --since, or for active users (a level), it says nothing more."""
    with session_scope(engine()) as session:
        add_acme(session, datetime.now(UTC))
    level = runner.invoke(app, ["signal", "acme", "usage", "200", "--metric", "reports_shared"])
    assert level.exit_code == 0 and "a count over a period needs --since" in level.output
    for extra in (["--metric", "active_users"], ["--since", "2026-02-01", "--at", "2026-03-01"]):
        done = runner.invoke(app, ["signal", "acme", "usage", "20", *extra])
        assert done.exit_code == 0 and done.output.startswith("Recorded usage"), done.output
        assert len(done.output.strip().splitlines()) == 1, done.output
