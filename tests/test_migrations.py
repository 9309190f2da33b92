"""The schema's migrations, on an empty SQLite file and an empty PostgreSQL schema: up to
the latest revision, down to nothing and up again, each revision on its own, with the
models and the migrated schema compared after each upgrade (no drift allowed)."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, inspect
from sqlmodel import Session, SQLModel, select

from db import migrate
from db.engine import make_engine
from models.tables import AssessmentRecord, Customer, SignalRecord
from tests.conftest import DATABASES, postgres_schema

TABLES = set(SQLModel.metadata.tables)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=DATABASES, ids=DATABASES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database nothing has touched yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/records.db"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def empty(empty_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_url)
    yield engine
    engine.dispose()


def drift(engine: Engine) -> list[object]:
    """What Alembic's autogenerate would still have to do to match the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts=migrate.autogenerate_options(engine.dialect.name)
        )
        return list(compare_metadata(context, SQLModel.metadata))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_up_down_and_up_again_without_drift(empty: Engine) -> None:
    assert migrate.current(empty) is None and tables(empty) == set()

    migrate.upgrade(empty)
    assert migrate.current(empty) == migrate.heads()[0]
    assert tables(empty) == TABLES
    assert drift(empty) == []

    migrate.downgrade(empty, "base")
    assert migrate.current(empty) is None and tables(empty) == set()

    migrate.upgrade(empty)
    assert migrate.is_current(empty) and drift(empty) == []


def test_each_revision_goes_down_and_up_on_its_own(empty: Engine) -> None:
    """The stairway: every revision's downgrade undoes exactly its upgrade."""
    revisions = [r.revision for r in reversed(list(migrate._script().walk_revisions()))]
    for revision in revisions:
        migrate.upgrade(empty, revision)
        before = set(inspect(empty).get_table_names())
        migrate.downgrade(empty, "-1")
        migrate.upgrade(empty, revision)
        assert migrate.current(empty) == revision
        assert set(inspect(empty).get_table_names()) == before
    assert drift(empty) == []


def test_connections_after_a_migration_are_as_before(empty: Engine) -> None:
    """The SQLite migration turns foreign keys and the driver's transactions off for
    itself: the pool must not hand that connection out as it was."""
    migrate.upgrade(empty)
    now = datetime.now(UTC)
    with Session(empty) as session:
        session.add(
            Customer(
                id="acme", company="Acme", contact_name="Ada", email="ada@acme.test",
                plan_name="default", plan_version=1, phase="onboarding", term_start=now,
                term_end=now,
            )
        )  # fmt: skip
        session.flush()
        session.rollback()
    with empty.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM customer").scalar() == 0
        if empty.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_the_drift_check_sees_a_missing_index(empty: Engine) -> None:
    """So that "no drift" above means something."""
    migrate.upgrade(empty)
    with empty.begin() as connection:
        connection.exec_driver_sql("DROP INDEX ix_task_status_due_at_id")
    found = drift(empty)
    assert [d[0] for d in found] == ["add_index"]  # type: ignore[index]
    assert found[0][1].name == "ix_task_status_due_at_id"  # type: ignore[index]


def test_a_database_made_by_create_all_is_adopted(empty: Engine) -> None:
    """Records created before Tandem had migrations: tables, rows, no alembic_version."""
    migrate.upgrade(empty, "0001")  # exactly what create_all made (checked for drift above)
    with empty.begin() as connection:
        connection.exec_driver_sql("DROP TABLE alembic_version")
    now = datetime.now(UTC)
    # Only the columns 0001 knew: today's model has more (added by later revisions).
    with empty.begin() as connection:
        connection.execute(
            Customer.__table__.insert().values(  # type: ignore[attr-defined]
                id="acme", company="Acme", contact_name="Ada", email="ada@acme.test",
                plan_name="default", plan_version=1, phase="onboarding", term=1,
                term_start=now, term_end=now + timedelta(days=365), onboarded=False,
                quadrant="unknown", at_risk=False, created_at=now, updated_at=now,
            )
        )  # fmt: skip
    assert migrate.current(empty) is None

    migrate.upgrade(empty)

    assert migrate.is_current(empty) and drift(empty) == []
    with Session(empty) as session:
        kept = session.get(Customer, "acme")
        assert kept is not None and kept.term_start == now


def test_0004_fills_the_standing_from_the_assessments(empty: Engine) -> None:
    """Customers already assessed get their latest two assessments onto their row,
    whatever order they were recorded in; one never assessed keeps what it had."""
    migrate.upgrade(empty, "0003")
    now = datetime.now(UTC)
    customer = dict(
        contact_name="Ada", email="ada@acme.test", plan_name="default", plan_version=1,
        phase="adopting", term=1, term_start=now, term_end=now, onboarded=False,
        at_risk=False, created_at=now, updated_at=now,
    )  # fmt: skip
    with empty.begin() as connection:
        insert = Customer.__table__.insert()  # type: ignore[attr-defined]
        # The old code wrote quadrant and level from whichever was recorded last.
        connection.execute(insert.values(id="acme", company="Acme", quadrant="neutral",
                                         level=0.1, **customer))  # fmt: skip
        connection.execute(insert.values(id="new", company="New", quadrant="unknown",
                                         level=None, **customer))  # fmt: skip
        for key, days_ago, quadrant, level, x in (
            ("c1", 30, "happy_profitable", 0.6, 0.5),  # newest but one
            ("c3", 1, "unhappy_profitable", -0.2, -0.4),  # newest
            ("c2", 60, "neutral", 0.1, 0.0),  # oldest, recorded last
        ):
            connection.execute(
                AssessmentRecord.__table__.insert().values(  # type: ignore[attr-defined]
                    customer_id="acme", key=key, assessed_at=now - timedelta(days=days_ago),
                    customer_score=x, company_score=0.3, quadrant=quadrant, level=level,
                    detail={},
                )
            )  # fmt: skip

    migrate.upgrade(empty)

    with Session(empty) as session:
        acme, new = session.get(Customer, "acme"), session.get(Customer, "new")
        assert acme is not None and new is not None
        assert (acme.quadrant, acme.level, acme.customer_score) == (
            "unhappy_profitable",
            -0.2,
            -0.4,
        )
        assert acme.assessed_at == now - timedelta(days=1)
        assert (acme.previous_quadrant, acme.previous_level) == ("happy_profitable", 0.6)
        assert acme.previous_assessed_at == now - timedelta(days=30)
        assert (new.quadrant, new.level, new.assessed_at, new.previous_quadrant) == (
            "unknown", None, None, None,
        )  # fmt: skip


def _add_customers(connection: Connection, ids: list[str], now: datetime) -> None:
    """Customer rows with only the columns every revision since 0004 has."""
    insert = Customer.__table__.insert()  # type: ignore[attr-defined]
    for cid in ids:
        connection.execute(
            insert.values(
                id=cid, company=cid.title(), contact_name="Ada", email="ada@acme.test",
                plan_name="default", plan_version=1, phase="adopting", term=1,
                term_start=now, term_end=now, onboarded=False, quadrant="unknown",
                at_risk=False, created_at=now, updated_at=now,
            )
        )  # fmt: skip


def test_0011_keeps_each_customers_latest_mrr_on_its_row(empty: Engine) -> None:
    """Customers with MRR signals get the latest by observation time (then the later
    recorded of two at the same time), whatever order they were recorded in; other
    kinds of signal do not count, and a customer without an MRR keeps NULL."""
    migrate.upgrade(empty, "0010")
    now = datetime.now(UTC)
    with empty.begin() as connection:
        _add_customers(connection, ["acme", "tied", "none"], now)
        for cid, kind, value, days_ago in (
            ("acme", "mrr", 900.0, 30),
            ("acme", "mrr", 1200.0, 2),  # the latest
            ("acme", "revenue", 5000.0, 1),  # not an MRR
            ("acme", "mrr", 700.0, 60),  # oldest, recorded last
            ("tied", "mrr", 100.0, 3),
            ("tied", "mrr", 150.0, 3),  # same time, recorded later: the latest
            ("none", "revenue", 300.0, 1),
        ):
            connection.execute(
                SignalRecord.__table__.insert().values(  # type: ignore[attr-defined]
                    customer_id=cid, kind=kind, value=value, source="api",
                    observed_at=now - timedelta(days=days_ago), recorded_at=now,
                )
            )  # fmt: skip

    migrate.upgrade(empty)

    assert drift(empty) == []
    with Session(empty) as session:
        kept = {c.id: (c.mrr, c.mrr_observed_at) for c in session.exec(select(Customer))}
    assert kept == {
        "acme": (1200.0, now - timedelta(days=2)),
        "tied": (150.0, now - timedelta(days=3)),
        "none": (None, None),
    }


def test_0012_and_0013_keep_each_customers_latest_revenue_and_trend_on_its_row(
    empty: Engine,
) -> None:
    """Customers get their latest assessment's revenue per month and trend (whatever
    order the assessments were recorded in); one whose latest had none, or never
    assessed, keeps NULL."""
    migrate.upgrade(empty, "0011")
    now = datetime.now(UTC)
    with empty.begin() as connection:
        _add_customers(connection, ["acme", "free", "new"], now)
        for cid, key, days_ago, inputs, trend in (
            ("acme", "c2", 1, {"revenue": 800.0, "cost": 100.0}, -0.2),  # the latest
            ("acme", "c1", 30, {"revenue": 500.0}, 0.4),  # older, recorded last
            ("free", "c1", 30, {"revenue": 500.0}, 0.1),
            ("free", "c2", 1, {"usage_change": 0.1}, None),  # the latest: neither
        ):
            connection.execute(
                AssessmentRecord.__table__.insert().values(  # type: ignore[attr-defined]
                    customer_id=cid, key=key, assessed_at=now - timedelta(days=days_ago),
                    quadrant="neutral", detail={"inputs": inputs}, trend=trend,
                )
            )  # fmt: skip

    migrate.upgrade(empty)

    assert drift(empty) == []
    with Session(empty) as session:
        kept = {c.id: (c.monthly_revenue, c.trend) for c in session.exec(select(Customer))}
    assert kept == {"acme": (800.0, -0.2), "free": (None, None), "new": (None, None)}


# Imports first, then waits for the go file, so the four start migrating together.
STARTER = """
import pathlib, sys, time
from db.engine import make_engine
from db.migrate import upgrade
engine = make_engine(sys.argv[1])
print("ready", flush=True)
while not pathlib.Path(sys.argv[2]).exists():
    time.sleep(0.002)
upgrade(engine)
"""


def test_processes_starting_together_migrate_once(empty_url: str, tmp_path: Path) -> None:
    """A worker, the API and a CLI command may all start on a new database at once: one
    migrates, the others wait for it and find the schema done."""
    go = tmp_path / "go"
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, empty_url, str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for starter in starters:
        assert starter.stdout is not None and starter.stdout.readline() == "ready\n"
    go.touch()
    for starter in starters:
        _, stderr = starter.communicate(timeout=60)
        assert starter.returncode == 0, stderr
    engine = make_engine(empty_url)
    try:
        assert migrate.is_current(engine) and tables(engine) == TABLES
    finally:
        engine.dispose()


def test_threads_starting_together_migrate_once(empty_url: str) -> None:
    """The same within one process: Alembic's proxies are global, so threads take turns."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        engine = make_engine(empty_url)  # its own connections
        try:
            barrier.wait()
            migrate.upgrade(engine)
        except BaseException as error:  # collected: a thread's failure must fail the test
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert migrate.is_current(empty_url)


def test_one_head() -> None:
    """Two branches of work that each added a revision must be merged before release."""
    assert len(migrate.heads()) == 1


def test_migrations_do_not_need_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    migrate.upgrade(f"sqlite:///{tmp_path}/elsewhere.db")
    assert migrate.current(f"sqlite:///{tmp_path}/elsewhere.db") == migrate.heads()[0]


def test_new_revisions_render_plain_sqlalchemy_types(empty: Engine) -> None:
    """What `alembic revision --autogenerate` would write for the current models: no
    application types (UTCDateTime, SQLModel's AutoString), JSON kept."""
    with empty.connect() as connection:
        options = migrate.autogenerate_options(empty.dialect.name)
        context = MigrationContext.configure(connection, opts=options)
        code = render_python_code(
            produce_migrations(context, SQLModel.metadata).upgrade_ops,  # type: ignore[arg-type]
            render_item=options["render_item"],
        )
    assert "sa.Column('term_end', sa.DateTime(timezone=True), nullable=False)" in code
    assert "sa.Column('detail', sa.JSON(), nullable=False)" in code
    assert "sa.Column('id', sa.String(length=64), nullable=False)" in code
    assert "UTCDateTime" not in code and "sqlmodel" not in code and "AutoString" not in code


def test_revisions_import_no_application_code() -> None:
    for path in (migrate.MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text()
        assert "import models" not in text and "from models" not in text, path.name
        assert "sqlmodel" not in text, path.name


def test_offline_sql_for_postgresql() -> None:
    """`alembic upgrade head --sql`, for a DBA who applies the SQL by hand."""
    config = migrate.alembic_config()
    config.set_main_option("sqlalchemy.url", "postgresql://tandem@db.invalid/tandem")
    output = io.StringIO()
    config.stdout = output
    with redirect_stdout(output):
        command.upgrade(config, "head", sql=True)
    sql = output.getvalue()
    assert "CREATE TABLE IF NOT EXISTS customer" in sql
    assert "term_end TIMESTAMP WITH TIME ZONE NOT NULL" in sql
    assert "detail JSON NOT NULL" in sql
    assert "CREATE INDEX ix_customer_quadrant_id ON customer (quadrant, id)" in sql
    assert "UPDATE alembic_version SET version_num='0002'" in sql
