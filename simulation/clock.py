"""The time-skipping test server's clock, driven through a client made for long skips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.empty_pb2 import Empty
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment


class SimulatedClock:
    """Temporal's time-skipping test server, driven through a client made for long skips.

    `WorkflowEnvironment.sleep` is one call that lasts as long as the work the skipped
    time brings takes in real time: with many customers on the same schedule, all their
    check-ins at once. Its client's defaults cut such a call off: a 30 s deadline, and
    HTTP/2 keep-alive pings every 30 s, which the test server counts as abuse while a
    call is in flight and nothing else is said, closing the connection after three
    (the call fails as a transport or "h2 protocol" error). On loopback a ping finds
    nothing that the kernel would not, so this client sends none, and skips wait as
    long as the work takes, up to SKIP_DEADLINE."""

    SKIP_DEADLINE = timedelta(minutes=10)

    def __init__(self, env: WorkflowEnvironment, client: Client) -> None:
        self.env = env
        self.client = client  # for the workers and the calls of the simulator too

    @classmethod
    async def of(cls, env: WorkflowEnvironment) -> SimulatedClock:
        # The environment's interceptors too: awaiting a workflow's result lets time skip.
        client = await env.connect_client(
            data_converter=pydantic_data_converter,
            keep_alive_config=None,
            interceptors=env.client.config()["interceptors"],
        )
        return cls(env, client)

    async def now(self) -> datetime:
        response = await self.client.test_service.get_current_time(Empty())
        return response.time.ToDatetime().replace(tzinfo=UTC)

    async def sleep(self, duration: timedelta) -> None:
        request = SleepRequest()
        request.duration.FromTimedelta(duration)
        await self.client.test_service.unlock_time_skipping_with_sleep(
            request, timeout=self.SKIP_DEADLINE
        )
