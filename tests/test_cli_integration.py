"""`make run`'s embedded stack, driven as a new user would: the real `tandem run`
(Temporal dev server from the wheel, worker, SQLite) and the real `tandem` CLI."""

from __future__ import annotations

import asyncio
import email
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

pytestmark = pytest.mark.integration
TANDEM = str(Path(sys.executable).parent / "tandem")


def free_ports(count: int) -> list[int]:
    """Distinct free ports: all held open until each is known, so no two are the same."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Stack:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        temporal, ui, api = free_ports(3)
        self.env = {
            **os.environ,
            "TANDEM_VAR_DIR": str(var_dir),
            "TANDEM_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
            "TANDEM_TEMPORAL_UI_PORT": str(ui),
            "TANDEM_API_PORT": str(api),
        }
        for name in ("TANDEM_DATABASE_URL", "DATABASE_URL", "TANDEM_SMTP_HOST"):
            self.env.pop(name, None)
        self.process: subprocess.Popen[str] | None = None
        self.output = ""

    def start(self, *args: str, sigint_ignored: bool = False) -> None:
        """`sigint_ignored`: as a shell script's background job (`make run &`) starts."""
        self.process = subprocess.Popen(
            [TANDEM, "run", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )
        deadline = time.monotonic() + 60
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            self.output += line
            if "Ctrl-C stops everything" in line:
                return
            if not line and self.process.poll() is not None:
                break
        pytest.fail(f"`tandem run` did not start:\n{self.output}")

    def stop(self, how: signal.Signals = signal.SIGINT) -> int:
        """Ctrl-C reaches the whole foreground group; SIGTERM (a process manager, `kill`)
        only `tandem run` itself."""
        assert self.process is not None
        if how is signal.SIGINT:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(how)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise
        self.output += self.process.stdout.read() if self.process.stdout else ""
        return code

    def tandem(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [TANDEM, *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if ok:
            assert done.returncode == 0, f"tandem {' '.join(args)} failed:\n{done.stderr}"
        return done

    async def list_workflows(self, query: str) -> list[str]:
        client = await Client.connect(self.env["TANDEM_TEMPORAL_ADDRESS"])
        deadline = time.monotonic() + 20
        while True:  # visibility is eventually consistent
            ids = [w.id async for w in client.list_workflows(query)]
            if ids or time.monotonic() > deadline:
                return ids
            await asyncio.sleep(0.3)

    def emails(self) -> list[EmailMessage]:
        files = sorted((self.var_dir / "outbox").glob("*.eml"))
        return [email.message_from_bytes(p.read_bytes(), policy=default_policy) for p in files]

    def wait_for_email(self, subject_part: str, timeout: float = 20) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.emails():
                if subject_part.lower() in str(message["Subject"]).lower():
                    return message
            time.sleep(0.2)
        pytest.fail(f"no email with {subject_part!r} in its subject: {self.emails()}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "var")
    stack.start()
    yield stack
    if stack.process and stack.process.poll() is None:
        stack.stop()


def test_signup_to_kickoff_through_the_cli_and_a_restart(stack: Stack, tmp_path: Path) -> None:
    signup = ["signup", "--company", "Acme", "--contact-name", "Ada", "--email", "ada@acme.test"]
    first = stack.tandem(*signup)
    assert "Signed up Acme" in first.stdout
    welcome = stack.wait_for_email("welcome")
    assert welcome["To"] == "ada@acme.test"
    assert welcome.get_body(("plain",)) is not None and welcome.get_body(("html",)) is not None

    again = stack.tandem(*signup)
    assert "already signed up" in again.stdout
    time.sleep(1)
    assert sum("welcome" in str(m["Subject"]).lower() for m in stack.emails()) == 1

    # Piped, as here: whole ids to copy into the next command, not 80 cut columns.
    customer_id = first.stdout.split(" as ")[1].split()[0]
    assert customer_id in stack.tandem("customers").stdout
    assert f"{customer_id}:t1:kickoff" in stack.tandem("tasks").stdout
    # Temporal's own UI can filter lifecycles by phase (custom search attributes).
    listed = asyncio.run(stack.list_workflows('TandemPhase = "onboarding"'))
    assert listed == [f"customer-{first.stdout.split(' as ')[1].split()[0]}"]
    tasks = json.loads(stack.tandem("tasks", "--json").stdout)
    assert [t["kind"] for t in tasks] == ["kickoff"] and tasks[0]["owner_role"] == "manager"
    kickoff = tasks[0]["id"]

    # Bad input: one clear line, non-zero exit, nothing changed.
    bad = stack.tandem(
        "signup", "--company", "X", "--contact-name", "Y", "--email", "nope", ok=False
    )
    assert bad.returncode == 1 and "email" in bad.stderr
    unknown_plan = stack.tandem(*signup[:-2], "--email", "b@acme.test", "--plan", "gold", ok=False)
    assert unknown_plan.returncode == 1 and "unknown plan 'gold'" in unknown_plan.stderr
    result = tmp_path / "kickoff.json"
    result.write_text(json.dumps({"kind": "kickoff"}))
    refused = stack.tandem("complete", kickoff, "--result", str(result), ok=False)
    assert refused.returncode == 1 and "result.success_plan: Field required" in refused.stderr
    assert "not captured yet" in stack.tandem("show", "Acme").stdout

    result.write_text(stack.tandem("result-example", "kickoff").stdout)
    assert "Completed" in stack.tandem("complete", kickoff, "--result", str(result)).stdout
    assert "Every rep logs" in stack.tandem("show", "Acme").stdout  # its own write, at once
    assert "Recorded nps" in stack.tandem("signal", "Acme", "nps", "9").stdout
    out_of_range = stack.tandem("signal", "Acme", "nps", "11", ok=False)
    assert "error: value: nps must be between 0 and 10, got 11" in out_of_range.stderr  # README
    february = ("--metric", "reports_shared", "--since", "2026-02-01", "--at", "2026-03-01")
    assert "Recorded usage" in stack.tandem("signal", "Acme", "usage", "280", *february).stdout
    backwards = stack.tandem(
        "signal", "Acme", "usage", "1", "--since", "2026-04-01", "--at", "2026-03-01", ok=False
    )
    assert "period_start must be before observed_at" in backwards.stderr

    # The API and dashboard run in the same stack, with a first admin token made for us.
    token = (stack.var_dir / "first-admin-token").read_text().strip()
    api = f"http://127.0.0.1:{stack.env['TANDEM_API_PORT']}"
    assert f"{api}/login" in stack.output and token in stack.output
    listed = httpx.get(f"{api}/customers", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200 and [c["company"] for c in listed.json()["items"]] == ["Acme"]
    assert httpx.get(f"{api}/openapi.json").json()["info"]["title"] == "Tandem"

    # `tandem demo` places a handful of customers across the quadrant at once.
    demo = stack.tandem("demo").stdout
    for quadrant in (
        "happy_profitable",
        "unhappy_profitable",
        "happy_unprofitable",
        "unhappy_unprofitable",
        "neutral",
    ):
        assert quadrant in demo, demo
    companies = {c["company"]: c for c in json.loads(stack.tandem("customers", "--json").stdout)}
    assert companies["Wayne Media"]["quadrant"] == "neutral" and companies["Wayne Media"]["at_risk"]
    # Their kickoffs were held (sign-up opens the kickoff task before it returns), so
    # they are past onboarding; the one with no kickoff yet is not.
    phases = {name: c["phase"] for name, c in companies.items() if name != "Acme"}
    assert phases.pop("Hooli") == "onboarding" and set(phases.values()) == {"adopting"}, phases

    # Ctrl-C stops cleanly (sign-up's processes too, without a traceback each); the
    # next `tandem run` resumes the lifecycle where it was.
    assert stack.stop() == 0
    assert "Stopped" in stack.output and "Traceback" not in stack.output, stack.output
    stack.start()
    assert "tutorial" in stack.tandem("tutorial-done", "Acme", "first-steps").stdout
    unknown = stack.tandem("tutorial-done", "Acme", "nosuch", ok=False)
    assert unknown.returncode == 1
    assert "tutorial: no 'nosuch' in plan default@v1 (its tutorials: first-steps" in unknown.stderr
    deadline = time.monotonic() + 20
    while "Tutorial completed" not in stack.tandem("show", "Acme").stdout:
        assert time.monotonic() < deadline, "the resumed lifecycle did not react"
        time.sleep(0.3)

    # Existing accounts from a CSV: started once, and only once, said in one line.
    today = datetime.now(UTC).date()
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        "external_id,company,contacts,term_start,term_end\n"
        f"INIT-1,Initech,Bill <bill@initech.test>,{today - timedelta(days=100)},"
        f"{today + timedelta(days=265)}\n"
    )
    started = stack.tandem("import", str(accounts)).stdout
    assert started == "accounts.csv: 1 account(s) started, 0 already running.\n"
    again = stack.tandem("import", str(accounts)).stdout
    assert again == "accounts.csv: 0 account(s) started, 1 already running.\n"


@pytest.mark.parametrize(
    ("sigint_ignored", "sigterms"),
    [(False, 1), (True, 1), (False, 2)],
    ids=["terminal", "background-job", "twice-as-make-passes-it-on"],
)
def test_sigterm_stops_the_whole_stack(tmp_path: Path, sigint_ignored: bool, sigterms: int) -> None:
    """The dev server runs in a session of its own; SIGTERM to `tandem run` stops it too,
    also when it was started as a script's background job, with SIGINT ignored, and
    quietly when a second SIGTERM comes while it stops (`make run` passes its own on)."""
    stack = Stack(tmp_path / "var")
    host, _, port = stack.env["TANDEM_TEMPORAL_ADDRESS"].rpartition(":")
    stack.start(sigint_ignored=sigint_ignored)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            pass  # it is up
        assert stack.process is not None
        for _ in range(sigterms - 1):
            stack.process.send_signal(signal.SIGTERM)
            time.sleep(0.05)  # the second comes while the first one's stop is under way
        assert stack.stop(signal.SIGTERM) == 0, stack.output
        assert "Stopped." in stack.output and "Traceback" not in stack.output, stack.output
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
            except OSError:
                return  # nothing listens any more
            time.sleep(0.2)
        pytest.fail("Temporal's dev server still listens after `tandem run` stopped")
    finally:  # a failed stop must not leave the dev server (its own session) running
        if stack.process is not None and stack.process.poll() is None:
            os.killpg(stack.process.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-f", f"temporal server start-dev.* --port {port} "], check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


async def _pollers(address: str, task_queue: str, count: int) -> set[str]:
    """The identities (pid@host) polling the task queue for workflow tasks, once there
    are `count` of them (or 120 s have passed: a worker logs that it polls before its
    first poll reaches the server, and a loaded machine can take a while)."""
    client = await Client.connect(address)
    request = DescribeTaskQueueRequest(
        namespace="default",
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + 120
    while True:
        described = await client.workflow_service.describe_task_queue(request)
        identities = {poller.identity for poller in described.pollers}
        if len(identities) >= count or time.monotonic() > deadline:
            return identities
        await asyncio.sleep(0.3)


def test_more_workers_poll_the_same_queue_and_stop_with_the_stack(tmp_path: Path) -> None:
    """`tandem run --workers 2`: its own worker and one `tandem worker` process beside
    it both take lifecycles from the task queue; stopping the stack stops both."""
    stack = Stack(tmp_path / "var")
    stack.start("--workers", "2")
    assert stack.process is not None
    try:
        identities = asyncio.run(_pollers(stack.env["TANDEM_TEMPORAL_ADDRESS"], "tandem", 2))
        pids = {int(identity.split("@")[0]) for identity in identities}
        log = (stack.var_dir / "worker-2.log").read_text(errors="replace")
        assert len(pids) == 2 and stack.process.pid in pids, (identities, log)
        [other] = pids - {stack.process.pid}
        signup = ["signup", "--company", "Acme", "--contact-name", "Ada", "--email", "a@acme.test"]
        assert "Signed up Acme" in stack.tandem(*signup).stdout

        assert stack.stop() == 0, stack.output
        assert "Stopped." in stack.output
        assert not _alive(other), "the second worker outlived the stack"
    finally:  # stopped in order, so no server or worker (sessions of their own) is left
        if stack.process.poll() is None:
            stack.stop()
