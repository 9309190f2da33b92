"""Sign-up's records and emails, done in processes of their own.

A worker is one Python process: workflow activations, Temporal's polling and the
activity threads all take turns on one interpreter lock. Sign-up's activity
(`open_account`: the customer's records, two emails rendered, flattened to MIME and
sent) is most of a sign-up's CPU, and sign-ups come in bursts with someone waiting on
each. In a pool of processes it runs on the machine's other cores and leaves the
worker's own process to Temporal: under a burst this took sign-up from about 30 to
about 50 a second on a 2-core machine (README, Benchmarks, "Earlier steps").

Only sign-up's local activity comes here. The other activities run far less often, and
they heartbeat, which only the worker's own process can do.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from sqlalchemy import URL
from temporalio.exceptions import ApplicationError

from activities.contracts import AccountOpened, AccountOpening
from settings import Settings

if TYPE_CHECKING:
    from activities.email import EmailActivities

# Set in each of the pool's processes by _start_process; the worker's own stays None.
_activities: EmailActivities | None = None


def shares_records(database_url: URL) -> bool:
    """Whether another process would see the same records: not a SQLite in memory."""
    if database_url.get_backend_name() != "sqlite":
        return True
    return database_url.database not in (None, "", ":memory:")


class SignUpPool:
    def __init__(self, settings: Settings, database_url: URL, processes: int) -> None:
        self._start = (settings, database_url, os.getpid())
        self._processes = processes
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # "spawn": a fork would copy the worker's threads' locks (Temporal's core,
        # SQLAlchemy's pool) in whatever state they were.
        pool = ProcessPoolExecutor(
            self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_process,
            initargs=self._start,
        )
        # Start the processes now, without waiting: each takes a second or two to
        # import, which the first sign-ups would otherwise wait for.
        for _ in range(self._processes):
            pool.submit(_ready)
        return pool

    def open_account(self, opening: AccountOpening) -> AccountOpened:
        pool = self._pool
        try:
            return pool.submit(_open_account, opening).result()
        except BrokenProcessPool:
            pass
        # A process died (killed, out of memory) and the pool with it. open_account is
        # idempotent, so a new pool may simply do it again.
        try:
            return self._renew(pool).submit(_open_account, opening).result()
        except BrokenProcessPool as error:
            # Never let it reach Temporal as it is: its worker takes an activity's
            # BrokenExecutor for its own executor broken, and stops altogether. Retried,
            # the sign-up gets a new pool again, and after its local tries it goes on as
            # a regular activity on the worker's threads.
            raise ApplicationError(
                f"sign-up's processes failed twice in a row: {error}", type="SignUpPoolBroken"
            ) from None

    def _renew(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        with self._lock:  # the sign-ups that found it broken together renew it once
            if self._pool is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
            return self._pool

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _start_process(settings: Settings, database_url: URL, worker: int) -> None:
    global _activities
    # Ctrl-C reaches the terminal's whole process group: the worker stops the pool in
    # its own time, where a KeyboardInterrupt here would print a traceback per process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM stays as it is: the executor stops the pool's other processes with it
    # when one dies, and waits for them.
    # Imported here: the parent imports this module from activities.email.
    from activities.email import EmailActivities
    from db.engine import make_engine

    _activities = EmailActivities(make_engine(database_url), settings)
    threading.Thread(target=_leave_with, args=(worker,), daemon=True).start()


def _leave_with(worker: int) -> None:
    """A worker killed outright (SIGKILL, out of memory) cannot stop its pool, and the
    pool's processes would wait for work forever: each leaves once the worker is gone."""
    while os.getppid() == worker:
        time.sleep(1.0)
    os._exit(0)


def _ready() -> None:
    """Nothing: submitted once per process so the pool starts them all."""


def _open_account(opening: AccountOpening) -> AccountOpened:
    assert _activities is not None, "the pool's initializer sets it"
    try:
        return _activities.open_account_here(opening)
    except ApplicationError:
        raise  # pickles with its type and retry flag
    except Exception as error:
        # Not every library's exception survives pickling back to the worker (some of
        # SQLAlchemy's do not): carry its name and words, retryable like the original.
        raise ApplicationError(f"{error}", type=type(error).__name__) from None
