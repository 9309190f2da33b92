"""`tandem calibrate` and `tandem backtest` on seeded histories in which churn follows
from behaviour (tests/churn_history.py), and the judgement's figures by hand."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli import app
from db.engine import make_engine
from db.migrate import upgrade
from models.plan import ScoringSettings
from models.signals import ACTIVE_USERS
from plans import load_plan, read_plan
from simulation.backtest import backtest, load, rescore, usage_warnings
from simulation.calibrate import Calibration, TooLittleHistory, calibrate, scoring_toml, verdict
from simulation.judgement import MIN_CHURNS, Judgement, Scored, judge
from tests.churn_history import Shape, write_history

runner = CliRunner()
DEFAULT = load_plan("default").scoring


def history(directory: Path, shape: Shape) -> tuple[str, Engine, dict[str, int]]:
    url = f"sqlite:///{directory / 'records.db'}"
    engine = make_engine(url)
    upgrade(engine)
    return url, engine, write_history(engine, shape)


@pytest.fixture(scope="module")
def monthly(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Engine, Calibration]:
    url, engine, written = history(tmp_path_factory.mktemp("monthly"), Shape(200, 13, seed=1))
    assert written["churns"] >= 30
    return url, engine, calibrate(engine, DEFAULT)


# --------------------------------------------------------------------------- calibrate


def test_calibrated_risk_ranks_the_later_churn_better_than_the_default(
    monthly: tuple[str, Engine, Calibration],
) -> None:
    _, _, result = monthly
    assert result.old.auc_churn_risk is not None and result.new.auc_churn_risk is not None
    assert result.new.auc_churn_risk > result.old.auc_churn_risk
    # Judged on the same later assessments, none of which the fit saw.
    assert result.old.assessments == result.new.assessments > 0
    assert result.judged_on >= result.new.assessments
    assert result.fitted_churns > 0 and result.fitted_on > 0
    assert result.recommended and result.verdict.startswith("Recommended")


def test_the_proposed_section_is_a_valid_plan(
    monthly: tuple[str, Engine, Calibration], tmp_path: Path
) -> None:
    _, _, result = monthly
    plan = tmp_path / "calibrated.toml"
    plan.write_text('name = "calibrated"\n' + result.toml)
    done = runner.invoke(app, ["plans", "validate", str(plan)])
    assert done.exit_code == 0, done.output
    scoring = read_plan(plan).scoring
    assert scoring == result.proposed
    assert scoring.risk.at_risk == "churn_risk" and scoring.risk.coefficients
    # Usage the history had earns weight; surveys it never had keep the plan's weight.
    assert scoring.weights.nps == DEFAULT.weights.nps
    assert scoring.weights.utilisation != DEFAULT.weights.utilisation


def test_calibrate_cli_prints_the_section_and_the_judgement(
    monthly: tuple[str, Engine, Calibration],
) -> None:
    url, _, result = monthly
    done = runner.invoke(app, ["calibrate", "--database-url", url, "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["new"]["auc_churn_risk"] == pytest.approx(result.new.auc_churn_risk)
    assert report["toml"] == result.toml
    assert report["recommended"] is True
    table = runner.invoke(app, ["calibrate", "--database-url", url])
    assert table.exit_code == 0, table.output
    assert "[scoring.risk.coefficients]" in table.output and "AUC risk" in table.output
    assert "put it in the plan file" in table.output and "NOT RECOMMENDED" not in table.output


def judgement(auc: float | None, brier: float | None) -> Judgement:
    return Judgement(
        horizon_days=90,
        assessments=500,
        churned=60,
        churned_accounts=40,
        base_rate=0.12,
        auc_churn_risk=auc,
        auc_minus_level=auc,
        at_risk_flagged=50,
        precision=0.3,
        recall=0.25,
        lift=2.5,
        top_decile_lift=2.0,
        brier=brier,
    )


@pytest.mark.parametrize(
    ("new", "recommended", "says"),
    [
        ((0.80, 0.090), True, "Recommended"),
        ((0.78, 0.091), True, "Recommended"),  # better ranking, the same Brier
        ((0.77, 0.085), True, "Recommended"),  # the same ranking, closer risk
        ((0.56, 0.114), False, "ranks churn worse (AUC of churn_risk 0.560 against 0.770)"),
        ((0.80, 0.095), False, "its risk is further from what happened (Brier 0.095"),
        ((0.76, 0.080), False, "ranks churn worse"),  # a better Brier does not make up for it
        ((0.77, 0.091), False, "does no better"),
        ((None, None), False, "nothing but churn, to judge the proposal by"),
    ],
)
def test_the_verdict_recommends_only_a_proposal_that_beats_the_plan(
    new: tuple[float | None, float | None], recommended: bool, says: str
) -> None:
    old = judgement(0.77, 0.091) if new[0] is not None else judgement(None, None)
    ok, why = verdict(old, judgement(*new))
    assert ok is recommended and says in why
    assert ("Keep the plan's current scoring" in why) is not recommended


def test_a_proposal_worse_on_the_later_period_is_not_recommended(tmp_path: Path) -> None:
    # Churn at random for eight months, then from behaviour: the fit learns noise that
    # the plan's scoring does not, and the later period shows it.
    url, engine, _ = history(tmp_path, Shape(200, 13, seed=2, behaviour_from=8))
    result = calibrate(engine, DEFAULT)
    assert result.new.auc_churn_risk is not None and result.old.auc_churn_risk is not None
    assert result.new.auc_churn_risk < result.old.auc_churn_risk
    assert not result.recommended and "Keep the plan's current scoring" in result.verdict
    done = runner.invoke(app, ["calibrate", "--database-url", url, "--json"])
    # A judgement, not a failure: a script reads `recommended`.
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["recommended"] is False and report["verdict"] == result.verdict
    table = runner.invoke(app, ["calibrate", "--database-url", url])
    assert table.exit_code == 0, table.output
    assert "Not recommended" in table.output and "NOT RECOMMENDED" in table.output
    assert "put it in the plan file" not in table.output
    assert "[scoring.risk.coefficients]" in table.output  # still shown, for inspection


def test_too_little_history_is_refused_saying_how_much_there_is(tmp_path: Path) -> None:
    url, engine, written = history(tmp_path, Shape(30, 8, seed=3))
    with pytest.raises(TooLittleHistory, match=r"at least 30 accounts .* there are \d+"):
        calibrate(engine, DEFAULT)
    done = runner.invoke(app, ["calibrate", "--database-url", url])
    assert done.exit_code == 1 and "calibrate needs at least 30" in done.output
    assert f"hold {written['accounts']} accounts" in done.output.replace("\n", " ")


def churners_before(engine: Engine, horizon: int, split_at: datetime) -> int:
    """From the records directly: accounts that churned within the horizon after an
    assessment whose horizon had ended by the split."""
    records = load(engine)
    return len(
        {
            a.customer_id
            for a in records.assessments
            if (churned := records.churned_at.get(a.customer_id)) is not None
            and a.assessed_at + timedelta(days=horizon) <= split_at
            and a.assessed_at < churned <= a.assessed_at + timedelta(days=horizon)
        }
    )


def test_the_churn_minimum_counts_what_the_fit_can_use(
    monthly: tuple[str, Engine, Calibration],
) -> None:
    url, engine, result = monthly
    assert result.fitted_churned_accounts == churners_before(engine, 90, result.split_at)
    assert result.fitted_churned_accounts >= MIN_CHURNS
    # Churn lands 1 to 27 days after a monthly check-in: few within a week of one, though
    # the history holds far more than 30 churns in all.
    assert len(load(engine).churned_at) > 2 * MIN_CHURNS
    with pytest.raises(TooLittleHistory) as refused:
        calibrate(engine, DEFAULT, horizon_days=7)
    message = str(refused.value)
    found = re.search(r"before (\d{4}-\d{2}-\d{2}) whose 7 days .* there are (\d+) ", message)
    assert found, message
    split_at = datetime.fromisoformat(found[1]).replace(tzinfo=UTC)
    assert int(found[2]) == churners_before(engine, 7, split_at) < MIN_CHURNS
    assert "within 7 days of an assessment in the fitting period" in message
    done = runner.invoke(app, ["calibrate", "--database-url", url, "--horizon-days", "7"])
    assert done.exit_code == 1 and f"there are {found[2]} " in done.output.replace("\n", " ")


def test_a_horizon_under_a_week_is_refused(monthly: tuple[str, Engine, Calibration]) -> None:
    url, _, _ = monthly
    for command in ("calibrate", "backtest"):
        args = [command, "--database-url", url, "--horizon-days", "6", "--plan", "default"]
        done = runner.invoke(app, args)
        assert done.exit_code == 2 and "--horizon-days" in done.output


# --------------------------------------------------------------------------- backtest


def test_backtest_reports_the_same_figures_per_horizon(
    monthly: tuple[str, Engine, Calibration],
) -> None:
    url, engine, result = monthly
    report = backtest(engine, DEFAULT)
    assert [j["horizon_days"] for j in report["judgement"]] == [30, 60, 90]
    ninety = report["judgement"][-1]
    assert set(ninety) == set(result.old.model_dump())
    assert ninety["auc_churn_risk"] > 0.6  # the default mapping is better than chance
    assert all(j["caution"] is None for j in report["judgement"])  # enough churn to judge
    # without --plan, the default plan is the one re-scored
    done = runner.invoke(app, ["backtest", "--database-url", url, "--horizon-days", "60"])
    assert done.exit_code == 0 and "top-decile lift" in done.output
    assert "Caution" not in done.output
    as_json = runner.invoke(
        app,
        ["backtest", "--plan", "default", "--database-url", url, "--horizon-days", "60", "--json"],
    )
    assert [j["horizon_days"] for j in json.loads(as_json.output)["judgement"]] == [60]


def test_a_small_history_is_judged_with_a_caution(tmp_path: Path) -> None:
    # (A large one has none: test_backtest_reports_the_same_figures_per_horizon.)
    small_url, _, written = history(tmp_path, Shape(15, 12, seed=2))
    assert 0 < written["churns"] < MIN_CHURNS
    small = json.loads(
        runner.invoke(app, ["backtest", "--database-url", small_url, "--json"]).output
    )
    for j in small["judgement"]:
        assert j["auc_churn_risk"] is not None  # figures there are, on a handful of churns
        assert (
            f"{j['churned_accounts']} churned account(s) (fewer than {MIN_CHURNS})" in j["caution"]
        )
        assert f"{j['assessments']} assessment(s) (fewer than 100)" in j["caution"]
    text = runner.invoke(app, ["backtest", "--database-url", small_url, "--horizon-days", "90"])
    assert text.exit_code == 0 and "Caution" in text.output
    assert "90 d: these figures rest on" in text.output.replace("\n", " ")


def with_key_features(*names: str) -> ScoringSettings:
    return DEFAULT.model_copy(
        update={"usage": DEFAULT.usage.model_copy(update={"key_features": list(names)})}
    )


def test_key_features_the_records_never_report_are_named(tmp_path: Path) -> None:
    url, engine, _ = history(tmp_path, Shape(30, 8, seed=3))  # the warning needs no more
    absent = with_key_features("invoices_sent", "seats_invited")
    # What the warning claims: breadth is -1 for every account, so it ranks nobody.
    breadths = {r.new.components.get("breadth") for r in rescore(load(engine), absent)}
    assert breadths - {None} == {-1.0}
    plan = tmp_path / "absent.toml"
    plan.write_text('name = "absent"\n' + scoring_toml(absent))
    done = runner.invoke(app, ["backtest", "--plan", str(plan), "--database-url", url, "--json"])
    (warning,) = json.loads(done.output)["warnings"]
    assert "none of the plan's key features (invoices_sent, seats_invited)" in warning
    assert "reports_shared" in warning  # what the records do report
    text = runner.invoke(app, ["backtest", "--plan", str(plan), "--database-url", url])
    assert "Warning" in text.output and "invoices_sent" in text.output
    records = load(engine)
    (partly,) = usage_warnings(records, with_key_features("reports_shared", "invoices_sent"))
    assert "key features invoices_sent never appear" in partly and "full breadth" in partly
    assert usage_warnings(records, with_key_features("reports_shared", "exports")) == []


def with_metrics(*names: str) -> ScoringSettings:
    return DEFAULT.model_copy(
        update={"usage": DEFAULT.usage.model_copy(update={"metrics": list(names)})}
    )


def test_scored_metrics_the_records_never_report_are_named(tmp_path: Path) -> None:
    # Metric names are free-form, so a misspelt one passes `plans validate`: the backtest
    # and calibrate say what it did to the scores.
    url, engine, _ = history(tmp_path, Shape(30, 8, seed=3))
    records = load(engine)
    misspelt = with_metrics("reports_sharred")
    # What the warning claims: usage is scored on active users alone, as a plan scoring
    # only them would; differently from the plan scoring every metric.
    alone = rescore(records, with_metrics(ACTIVE_USERS))
    scored = rescore(records, misspelt)
    assert [r.new.components for r in scored] == [r.new.components for r in alone]
    every = rescore(records, DEFAULT)
    assert any(r.new.components != a.new.components for r, a in zip(every, alone, strict=True))
    (warning,) = usage_warnings(records, misspelt)
    assert "none of the plan's scored metrics (reports_sharred)" in warning
    assert "reports_shared" in warning  # what the records do report
    (partly,) = usage_warnings(records, with_metrics("reports_shared", "invoices_sent"))
    assert "scored metrics invoices_sent never appear" in partly
    assert usage_warnings(records, with_metrics("reports_shared", "exports")) == []
    plan = tmp_path / "misspelt.toml"
    plan.write_text('name = "misspelt"\n' + scoring_toml(misspelt))
    text = runner.invoke(app, ["backtest", "--plan", str(plan), "--database-url", url])
    assert text.exit_code == 0 and "Warning" in text.output and "reports_sharred" in text.output


@pytest.mark.parametrize(
    "shape",
    [
        Shape(150, 12, event_scale=1000, period_days=7, seed=11),  # weekly, big numbers
        Shape(150, 12, event_scale=0.05, surveys=True, seed=12),  # sparse events, surveys
    ],
    ids=["weekly-large-scale", "monthly-sparse-with-surveys"],
)
def test_scoring_holds_on_data_shaped_otherwise(tmp_path: Path, shape: Shape) -> None:
    _, engine, _ = history(tmp_path, shape)
    ninety = backtest(engine, DEFAULT)["judgement"][-1]
    assert ninety["churned"] > 0
    assert ninety["auc_churn_risk"] > 0.6
    assert ninety["auc_minus_level"] > 0.6


# --------------------------------------------------------------------------- by hand


def test_the_judgement_by_hand() -> None:
    """Five assessments at t0, 90-day horizon. Churned within it: a and c. Risks
    a .8, b .6, c .4, d .2, e .1; at_risk: a and b. Pairs (churned, stayed) ranked
    right: a over b, d, e; c over d, e (not b): 5 of 6 -> AUC 5/6."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    end = t0 + timedelta(days=200)

    def row(cid: str, risk: float, level: float, flagged: bool, churn_day: int | None) -> Scored:
        churned_at = None if churn_day is None else t0 + timedelta(days=churn_day)
        return Scored(cid, t0, {}, risk, 90, level, flagged, churned_at)

    rows = [
        row("a", 0.8, -0.5, True, 30),
        row("b", 0.6, -0.2, True, None),
        row("c", 0.4, -0.3, False, 80),
        row("d", 0.2, 0.4, False, 120),  # churned, but after the horizon
        row("e", 0.1, 0.5, False, None),
    ]
    j = judge(rows, 90, end)
    assert (j.assessments, j.churned, j.churned_accounts) == (5, 2, 2)
    assert j.caution is not None and "2 churned account(s)" in j.caution
    assert "5 assessment(s)" in j.caution
    assert j.base_rate == pytest.approx(0.4)
    assert j.auc_churn_risk == pytest.approx(5 / 6)
    # -level: a .5, c .3, b .2, d -.4, e -.5: every churn above every stay -> 1.0
    assert j.auc_minus_level == pytest.approx(1.0)
    assert (j.at_risk_flagged, j.precision, j.recall) == (2, 0.5, 0.5)
    assert j.lift == pytest.approx(0.5 / 0.4)
    # top decile of 5 rows is the top 1 (a, churned): 1.0 / 0.4
    assert j.top_decile_lift == pytest.approx(2.5)
    brier = ((0.8 - 1) ** 2 + 0.6**2 + (0.4 - 1) ** 2 + 0.2**2 + 0.1**2) / 5
    assert j.brier == pytest.approx(brier)
    # At 60 days c's churn (day 80) is outside; the horizon of a row at t0 ends in time.
    assert judge(rows, 60, end).churned == 1
    # A row whose horizon has not ended by the end of the records, without churn, is out.
    assert judge(rows, 90, t0 + timedelta(days=60)).assessments == 2  # a, c: churned in time
