"""SQLite writers of one process take turns on a lock of its own (db/sqlite.py): taken
at a transaction's first write, given back when it ends, however it ends."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import make_engine, session_scope
from db.sqlite import QueuedWriterConnection, writers_lock


def connect(path: Path, **kwargs: object) -> QueuedWriterConnection:
    connection = sqlite3.connect(path, factory=QueuedWriterConnection, **kwargs)
    assert isinstance(connection, QueuedWriterConnection)
    return connection


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "t.db"
    with connect(path) as setup:
        setup.execute("CREATE TABLE t (a INTEGER)")
    return path


def test_a_writer_holds_the_lock_until_its_transaction_commits(db: Path) -> None:
    lock = writers_lock(str(db))
    assert lock is not None
    first, second = connect(db), connect(db, check_same_thread=False)
    first.execute("SELECT * FROM t").fetchall()
    assert not lock.locked()  # reads take nothing
    first.execute("INSERT INTO t VALUES (1)")
    assert lock.locked()
    # A reader is not held up by the writer.
    assert second.execute("SELECT count(*) FROM t").fetchone() == (0,)

    done = threading.Event()

    def write() -> None:
        second.execute("INSERT INTO t VALUES (2)")
        second.commit()
        done.set()

    waiting = threading.Thread(target=write)
    waiting.start()
    assert not done.wait(0.3)  # queued behind the first writer
    first.commit()
    waiting.join(10)
    assert done.is_set()
    assert not lock.locked()
    assert first.execute("SELECT a FROM t ORDER BY a").fetchall() == [(1,), (2,)]


def test_rollback_close_and_failed_writes_give_the_lock_back(db: Path) -> None:
    lock = writers_lock(str(db))
    assert lock is not None
    connection = connect(db)
    connection.execute("INSERT INTO t VALUES (1)")
    connection.rollback()
    assert not lock.locked()

    connection.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError):
        connection.execute("INSERT INTO missing VALUES (1)")
    assert lock.locked()  # the transaction is still open
    connection.rollback()
    assert not lock.locked()

    connection.execute("INSERT INTO t VALUES (1)")
    connection.close()
    assert not lock.locked()
    assert connect(db).execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_an_autocommit_write_gives_the_lock_back_at_once(db: Path) -> None:
    lock = writers_lock(str(db))
    assert lock is not None
    connection = connect(db, isolation_level=None)
    connection.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    assert not lock.locked()
    assert connection.execute("SELECT count(*) FROM t").fetchone() == (2,)


def test_a_writer_waits_as_long_as_its_busy_timeout_then_fails_as_sqlite_does(db: Path) -> None:
    holder = connect(db)
    holder.execute("INSERT INTO t VALUES (1)")
    impatient = connect(db, timeout=0.1)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        impatient.execute("INSERT INTO t VALUES (2)")
    holder.commit()
    impatient.execute("INSERT INTO t VALUES (2)")
    impatient.commit()
    assert impatient.execute("SELECT count(*) FROM t").fetchone() == (2,)


def test_in_memory_databases_are_their_connections_own() -> None:
    assert writers_lock(":memory:") is None
    connection = sqlite3.connect(":memory:", factory=QueuedWriterConnection)
    connection.execute("CREATE TABLE t (a INTEGER)")
    connection.execute("INSERT INTO t VALUES (1)")
    connection.commit()


def test_the_engines_sessions_queue_and_hand_over(tmp_path: Path) -> None:
    """Through SQLAlchemy as Tandem uses it: engines on the same file share one lock, a
    session's commit hands it over, and a session closed without committing (the
    pool's rollback) does too."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    engine, other = make_engine(url), make_engine(url)
    with session_scope(engine) as session:
        session.execute(text("CREATE TABLE t (a INTEGER)"))
    lock = writers_lock(str(tmp_path / "e.db"))
    assert lock is not None and not lock.locked()

    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        assert lock.locked()
        raise RuntimeError("the work failed")
    assert not lock.locked()

    threads = [
        threading.Thread(target=lambda e=e: _insert_many(e)) for e in (engine, other, engine)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not lock.locked()
    with session_scope(other) as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 60


def _insert_many(engine: object) -> None:
    for _ in range(20):
        with session_scope(engine) as session:  # type: ignore[arg-type]
            session.execute(text("INSERT INTO t VALUES (1)"))
