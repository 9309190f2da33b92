"""`tandem backtest`, `tandem calibrate` and `tandem simulate` given the wrong thing: one
line saying what is wrong, exit 1, and nothing written where it does not belong."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from cli import app
from db.engine import make_engine
from db.migrate import current, heads, upgrade
from tests.conftest import postgres_schema

runner = CliRunner()
COMMANDS = ["backtest", "calibrate"]


def refused(command: str, url: str) -> str:
    done = runner.invoke(app, [command, "--database-url", url])
    assert done.exit_code == 1, done.output
    assert isinstance(done.exception, SystemExit)  # a refusal, not an error raised
    return " ".join(done.output.split())


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("notaurl", "'notaurl' is not a database URL"),
        ("mysql://someone@db.invalid/crm", "Tandem reads SQLite and PostgreSQL records"),
        ("nosuchdb://x", "Tandem reads SQLite and PostgreSQL records"),
        ("postgresql://someone:s3cret@127.0.0.1:1/crm", "cannot read postgresql+psycopg://"),
    ],
)
def test_a_database_url_that_cannot_be_read_is_refused_in_one_line(
    command: str, url: str, says: str
) -> None:
    said = refused(command, url)
    assert says in said
    assert "s3cret" not in said  # a password is never printed


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_that_is_not_a_database_is_refused(command: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("not a database\n")
    assert "file is not a database" in refused(command, f"sqlite:///{notes}")
    assert notes.read_text() == "not a database\n"


def fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", COMMANDS)
def test_someone_elses_sqlite_database_is_refused_and_left_as_it_was(
    command: str, tmp_path: Path
) -> None:
    crm = tmp_path / "crm.db"
    with sqlite3.connect(crm) as connection:
        connection.execute("CREATE TABLE deals (id INTEGER PRIMARY KEY, amount REAL)")
    before = fingerprint(crm)
    said = refused(command, f"sqlite:///{crm}")
    assert "holds no Tandem records" in said
    assert fingerprint(crm) == before  # no schema added, not even switched to WAL
    assert not (tmp_path / "crm.db-wal").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_someone_elses_postgresql_database_is_refused_and_left_as_it_was(command: str) -> None:
    with postgres_schema() as url:
        assert "holds no Tandem records" in refused(command, url)
        probe = create_engine(url, poolclass=NullPool)
        try:
            assert inspect(probe).get_table_names() == []
        finally:
            probe.dispose()


def test_records_without_assessments_have_nothing_to_backtest(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    said = refused("backtest", url)
    assert "the records hold no assessments to re-score" in said


def test_tandem_records_of_an_earlier_release_are_migrated_and_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    engine = make_engine(url)
    upgrade(engine, "0012")
    done = runner.invoke(app, ["backtest", "--database-url", url])
    # Read as Tandem's (migrated), then found empty: not refused as someone else's.
    assert "no assessments to re-score" in " ".join(done.output.split())
    assert current(engine) == heads()[0]
    engine.dispose()


def test_simulate_refuses_an_out_folder_it_cannot_make_before_running(tmp_path: Path) -> None:
    taken = tmp_path / "report"
    taken.write_text("a file, not a folder\n")
    done = runner.invoke(
        app, ["simulate", "--customers", "1", "--months", "1", "--out", str(taken)]
    )
    assert done.exit_code == 1, done.output
    said = " ".join(done.output.split())
    assert f"--out {taken}: cannot make the report's folder there" in said
    assert taken.read_text() == "a file, not a folder\n"
