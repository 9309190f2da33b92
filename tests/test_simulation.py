"""The cohort simulation (through the real lifecycles on the real time-skipping server) and
the backtest (re-scoring recorded assessments under a changed plan)."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner

from cli import app
from db.engine import make_engine
from db.migrate import upgrade
from models.plan import ScoringSettings
from models.tables import AssessmentRecord, Customer, SignalRecord
from plans import BUILT_IN, load_plan, read_plan
from simulation import simulate as simulate_module
from simulation.backtest import backtest, confusion
from simulation.clock import calendar_start
from simulation.results import QUADRANTS
from simulation.simulate import HTML_NAME, JSON_NAME, PlanRun, simulate

CUSTOMERS, MONTHS, SEED = 8, 3, 7


@pytest.fixture(scope="module")
def strict_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default plan with a wider neutral band and a decision on every unhappy account."""
    text = (BUILT_IN / "default.toml").read_text()
    text = text.replace('name = "default"', 'name = "strict"')
    text = text.replace("neutral_band = 0.1 ", "neutral_band = 0.2 ")
    text = text.replace(
        'title = "Expectation-alignment call: revisit what success means to them"',
        'title = "Expectation-alignment call"\nrequires_decision = true',
    )
    path = tmp_path_factory.mktemp("plans") / "strict.toml"
    path.write_text(text)
    assert read_plan(path).scoring.neutral_band == 0.2
    return path


@pytest.fixture(scope="module")
async def simulated(
    tmp_path_factory: pytest.TempPathFactory, strict_plan: Path
) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("simulation")
    plans = [load_plan("default"), read_plan(strict_plan)]
    results = await simulate(CUSTOMERS, MONTHS, SEED, plans, out, keep_records=True)
    return out, results


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_files_and_counts(simulated: tuple[Path, dict[str, Any]]) -> None:
    out, results = simulated
    assert (out / HTML_NAME).is_file() and (out / JSON_NAME).is_file()
    data = json.loads((out / JSON_NAME).read_text())
    assert data == json.loads(json.dumps(results))
    assert {k: data[k] for k in ("seed", "customers", "months")} == {
        "seed": SEED,
        "customers": CUSTOMERS,
        "months": MONTHS,
    }
    for run in data["runs"]:
        assert set(run) == {
            "plan",
            "months",
            "cohorts",
            "totals",
            "tasks",
            "playbooks",
            "final_positions",
        }
        assert [m["month"] for m in run["months"]] == list(range(1, MONTHS + 1))
        for month in run["months"]:
            assert set(month["quadrants"]) == set(QUADRANTS)
            assert sum(month["quadrants"].values()) == month["active"]
            assert month["active"] == CUSTOMERS - month["churned"]
        assert run["months"][-1]["churned"] <= run["totals"]["churned"]
        assert sum(c["customers"] for c in run["cohorts"].values()) == CUSTOMERS
        assert sum(c["churned"] for c in run["cohorts"].values()) == run["totals"]["churned"]
        # The cohort spans price tiers, and the check-ins have placed accounts on usage
        # and billing alone (no cost is recorded; surveys are rare).
        assert len(run["cohorts"]) >= 2
        assert run["months"][0]["quadrants"]["unknown"] < CUSTOMERS
        tasks = run["tasks"]
        assert tasks["opened"]["kickoff"] == CUSTOMERS
        assert tasks["total_opened"] == sum(tasks["opened"].values())
        assert tasks["total_escalated"] == sum(tasks["escalated"].values()) > 0
        assert run["playbooks"], "the check-ins open playbooks"
        for playbook in run["playbooks"].values():
            assert 0 <= playbook["moved_toward_happy_profitable"] <= playbook["accounts"]
            assert len(playbook["moved"]) == playbook["moved_toward_happy_profitable"]
        assert len(run["final_positions"]) == CUSTOMERS


def test_html_is_one_page_with_svg_charts(simulated: tuple[Path, dict[str, Any]]) -> None:
    out, _ = simulated
    page = Tags()
    page.feed((out / HTML_NAME).read_text())
    assert page.tags.count("svg") == 4  # migration and scatter, per plan
    assert "polygon" in page.tags and "circle" in page.tags
    assert "script" not in page.tags and "link" not in page.tags  # self-contained
    text = " ".join(page.text)
    assert "default@v1" in text and "strict@v1" in text and "Side by side" in text


def test_compare_runs_the_same_cohort_under_both_plans(
    simulated: tuple[Path, dict[str, Any]],
) -> None:
    _, results = simulated
    assert results["plans"] == ["default@v1", "strict@v1"]
    default, strict = results["runs"]
    assert [r["plan"] for r in results["runs"]] == results["plans"]
    segments = [p["segment"] for p in default["final_positions"]]
    assert segments == [p["segment"] for p in strict["final_positions"]]
    # The strict plan asks for a decision on expectation-alignment playbooks too.
    assert default["cohorts"].keys() == strict["cohorts"].keys()


def test_same_seed_gives_identical_json(
    simulated: tuple[Path, dict[str, Any]], strict_plan: Path, tmp_path: Path
) -> None:
    first, _ = simulated
    again = tmp_path / "again"
    done = CliRunner().invoke(
        app,
        [
            "simulate",
            "--customers",
            str(CUSTOMERS),
            "--months",
            str(MONTHS),
            "--seed",
            str(SEED),
            "--plan",
            "default",
            "--compare",
            str(strict_plan),
            "--out",
            str(again),
        ],
    )
    assert done.exit_code == 0, done.output
    assert (again / JSON_NAME).read_bytes() == (first / JSON_NAME).read_bytes()


def test_runs_start_on_a_calendar_that_repeats(simulated: tuple[Path, dict[str, Any]]) -> None:
    """Month lengths and weekdays shape a run, so every run starts on 2001's calendar,
    whichever day it is made: the same seed gives the same results on another day."""
    out, _ = simulated
    engine = make_engine(f"sqlite:///{out / 'records-1-default.db'}")
    try:
        with Session(engine) as session:
            first = min(session.exec(select(SignalRecord.observed_at)))
    finally:
        engine.dispose()
    assert first.month == 1 and (first.year - 2001) % 28 == 0  # the first month's usage


def test_signals_are_stamped_on_the_simulators_own_days(
    simulated: tuple[Path, dict[str, Any]],
) -> None:
    """The server's clock also runs in real time between skips: stamps read from it
    would carry the seconds each month took to simulate, and a score near a window's
    edge (or a tie among peers) would then depend on how fast the machine ran. A
    month's signals end 29.5 days into each simulated month from the calendar's first
    midnight, to the microsecond."""
    out, _ = simulated
    engine = make_engine(f"sqlite:///{out / 'records-1-default.db'}")
    try:
        with Session(engine) as session:
            stamps = set(
                session.exec(
                    select(SignalRecord.observed_at).where(SignalRecord.source == "simulation")
                )
            )
    finally:
        engine.dispose()
    midnight = datetime(min(stamps).year, 1, 1, tzinfo=UTC)
    assert stamps == {midnight + timedelta(days=29.5 + 30 * month) for month in range(MONTHS)}


def test_calendar_start_repeats_2001s_calendar() -> None:
    today = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    start = calendar_start(today)
    assert start == datetime(2029, 1, 1, tzinfo=UTC)
    assert calendar_start(start) == start  # at the start already: no skip
    assert calendar_start(start + timedelta(seconds=1)) == datetime(2057, 1, 1, tzinfo=UTC)
    origin = datetime(2001, 1, 1, tzinfo=UTC)
    for offset in range(0, 13 * 31 + 366, 1):
        day, same = start + timedelta(days=offset), origin + timedelta(days=offset)
        assert (day.month, day.day, day.weekday()) == (same.month, same.day, same.weekday())


def test_a_failed_run_in_its_own_process_comes_back_with_its_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plan run side by side fails in a process of its own; what it raised must reach
    the caller through pickling, which the SDK's RPCError does not survive."""

    async def failing(run: PlanRun, report: Any) -> dict[str, Any]:
        raise RPCError("h2 protocol error", RPCStatusCode.UNAVAILABLE, b"")

    with pytest.raises(TypeError):  # why the run's error is wrapped
        pickle.loads(pickle.dumps(RPCError("x", RPCStatusCode.UNAVAILABLE, b"")))
    monkeypatch.setattr(simulate_module, "_run_plan", failing)
    run = PlanRun(load_plan("default"), CUSTOMERS, MONTHS, SEED, "r1", None)
    with pytest.raises(RuntimeError) as caught:
        simulate_module._run_alone(0, run, None)
    back = pickle.loads(pickle.dumps(caught.value))
    assert "default@v1" in str(back) and "h2 protocol error" in str(back)
    assert "Traceback" in str(back)


def test_backtest_on_the_simulation_records(simulated: tuple[Path, dict[str, Any]]) -> None:
    out, results = simulated
    engine = make_engine(f"sqlite:///{out / 'records-1-default.db'}")
    try:
        same = backtest(engine, load_plan("default").scoring)
        # Every account still there at the end was assessed at every monthly check-in.
        stayed = CUSTOMERS - results["runs"][0]["totals"]["churned"]
        assert same["assessments"] >= stayed * MONTHS
        # Re-scoring with the scoring that made the records reproduces every one of them.
        assert same["assessments_changed"] == 0 and same["changes"] == []
        assert same["at_risk"]["old"] == same["at_risk"]["new"]
        wide = ScoringSettings(neutral_band=0.5)
        changed = backtest(engine, wide)
        assert changed["assessments_changed"] > 0
        assert changed["changes"] and {c["new"] for c in changed["changes"]} == {"neutral"}
    finally:
        engine.dispose()


def test_backtest_cli_prints_json(simulated: tuple[Path, dict[str, Any]], strict_plan: Path):
    out, _ = simulated
    url = f"sqlite:///{out / 'records-1-default.db'}"
    done = CliRunner().invoke(
        app, ["backtest", "--plan", str(strict_plan), "--database-url", url, "--json"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["accounts"] == CUSTOMERS and set(report["at_risk"]) == {"old", "new"}
    table = CliRunner().invoke(app, ["backtest", "--plan", str(strict_plan), "--database-url", url])
    assert table.exit_code == 0 and "precision" in table.output


def test_backtest_refuses_records_that_are_not_there(tmp_path: Path, strict_plan: Path) -> None:
    """A misspelt path must not become an empty database and a report of no change."""
    missing = tmp_path / "recrods.db"
    done = CliRunner().invoke(
        app, ["backtest", "--plan", str(strict_plan), "--database-url", f"sqlite:///{missing}"]
    )
    assert done.exit_code == 1
    assert f"error: no records at {missing}" in done.output
    assert not missing.exists()


def test_confusion_counts() -> None:
    m = confusion({"a", "c", "d"}, {"a", "b", "e"})
    assert (m.flagged, m.churned, m.caught) == (3, 3, 1)
    assert m.precision == pytest.approx(1 / 3) and m.recall == pytest.approx(1 / 3)
    none = confusion(set(), set())
    assert none.precision is None and none.recall is None


UNHAPPY = {"nps": 2, "csat": 1, "fcr": 0.3, "revenue": 1000, "cost": 300}
HAPPY = {"nps": 10, "csat": 5, "fcr": 0.95, "revenue": 1000, "cost": 300}


def test_backtest_precision_and_recall_by_hand(tmp_path: Path) -> None:
    """a, b, e churned. Recorded: a unhappy, c unhappy, d flagged neutral-high-profit.
    The signals say a and b are unhappy, c and d happy; e was never assessed."""
    engine = make_engine(f"sqlite:///{tmp_path / 'records.db'}")
    upgrade(engine)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    cases: dict[str, tuple[str, dict[str, float] | None, str, list[str]]] = {
        "a": ("churned", UNHAPPY, "unhappy_profitable", []),
        "b": ("churned", UNHAPPY, "happy_profitable", []),
        "c": ("adopting", HAPPY, "unhappy_unprofitable", []),
        "d": ("adopting", HAPPY, "happy_profitable", ["neutral_high_profit"]),
        "e": ("churned", None, "", []),
    }
    with Session(engine) as session:
        for cid, (phase, signals, quadrant, risks) in cases.items():
            session.add(
                Customer(
                    id=cid,
                    company=f"Company {cid}",
                    contact_name="X",
                    email=f"{cid}@x.test",
                    plan_name="default",
                    plan_version=1,
                    phase=phase,
                    term_start=now - timedelta(days=200),
                    term_end=now + timedelta(days=165),
                )
            )
            session.flush()
            for kind, value in (signals or {}).items():
                session.add(
                    SignalRecord(
                        customer_id=cid, kind=kind, value=value, observed_at=now - timedelta(days=1)
                    )
                )
            if signals is None:
                continue
            if cid == "c":  # an earlier assessment: only the latest one counts
                session.add(
                    AssessmentRecord(
                        customer_id=cid,
                        key=f"{cid}:t1:check_in-5",
                        quadrant="happy_profitable",
                        assessed_at=now - timedelta(days=30),
                        detail={"risks": []},
                    )
                )
            session.add(
                AssessmentRecord(
                    customer_id=cid,
                    key=f"{cid}:t1:check_in-6",
                    assessed_at=now,
                    quadrant=quadrant,
                    detail={"risks": risks},
                )
            )
        session.commit()
    try:
        report = backtest(engine, ScoringSettings())
    finally:
        engine.dispose()
    assert report["churned"] == 3 and report["accounts"] == 4
    assert report["at_risk"]["old"] == {
        "flagged": 3,
        "churned": 3,
        "caught": 1,
        "precision": pytest.approx(1 / 3),
        "recall": pytest.approx(1 / 3),
    }
    assert report["at_risk"]["new"] == {
        "flagged": 2,
        "churned": 3,
        "caught": 2,
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
    }
    assert [(c["customer"], c["old"], c["new"]) for c in report["changes"]] == [
        ("b", "happy_profitable", "unhappy_profitable"),
        ("c", "unhappy_unprofitable", "happy_profitable"),
    ]
