"""The suite hides no skips: CI requires PostgreSQL, and one setting points every
PostgreSQL test (records, faults, benchmarks) at the same server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
NOWHERE = "postgresql+psycopg://nobody@127.0.0.1:1/test"  # nothing listens on port 1


def test_ci_requires_postgres() -> None:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    require = lines.index("export TANDEM_TEST_REQUIRE_POSTGRES=1")
    assert require < next(i for i, line in enumerate(lines) if line.startswith("make test"))


def test_every_postgres_test_follows_the_one_setting() -> None:
    """Pointed at a server that is not there, with PostgreSQL required, the records', the
    fault and the benchmark tests all fail, naming that server; none skips or passes
    against another one."""
    tests = [
        "tests/test_api.py::test_renewal_before_without_a_zone_means_utc[postgresql]",
        "tests/test_faults.py::test_a_database_outage_is_retried_and_loses_nothing",
        "tests/test_bench_smoke.py::test_api_reads_smoke",
    ]
    env = {
        **os.environ,
        "TANDEM_TEST_POSTGRES_URL": NOWHERE,
        "TANDEM_TEST_REQUIRE_POSTGRES": "1",
        "COLUMNS": "400",  # the summary lines whole
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = done.stdout.strip().splitlines()[-1]
    assert "passed" not in summary and "skipped" not in summary, done.stdout[-3000:]
    refused = [
        line
        for line in done.stdout.splitlines()
        if line.startswith(("FAILED ", "ERROR ")) and "not reachable at 127.0.0.1:1" in line
    ]
    assert len(refused) == 3, done.stdout[-3000:]
