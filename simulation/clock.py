"""The time-skipping test server's clock, driven through a client made for long skips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.empty_pb2 import Empty
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

# Between 1901 and 2099 the Gregorian calendar repeats every 28 years, weekdays and leap
# years alike. A run starts on the first 1 January, at or after the server's time, that
# has 2001's calendar, so one seed gives the same results on whichever day it runs (month
# lengths and weekdays shape the usage a month holds and the days tasks fall due).
CALENDAR_ORIGIN = datetime(2001, 1, 1, tzinfo=UTC)
CALENDAR_CYCLE = timedelta(days=28 * 365 + 7)


def calendar_start(now: datetime) -> datetime:
    """The first 1 January at or after `now` with 2001's calendar."""
    cycles = -((CALENDAR_ORIGIN - now) // CALENDAR_CYCLE)  # rounded up
    return CALENDAR_ORIGIN + max(cycles, 0) * CALENDAR_CYCLE


class SimulatedClock:
    """Temporal's time-skipping test server, driven through a client made for long skips.

    `WorkflowEnvironment.sleep` is one call that lasts as long as the work the skipped
    time brings takes in real time: with many customers on the same schedule, all their
    check-ins at once. Its client's defaults cut such a call off: a 30 s deadline, and
    HTTP/2 keep-alive pings every 30 s, which the test server counts as abuse while a
    call is in flight and nothing else is said, closing the connection after three
    (the call fails as a transport or "h2 protocol" error). On loopback a ping finds
    nothing that the kernel would not, so these clients send none, and skips wait as
    long as the work takes, up to SKIP_DEADLINE.

    The skips have a connection of their own. A skip cannot be retried (it would skip
    the time twice), while every other call (the workers' polls and completions, the
    simulator's updates, signals and queries) is retried by the SDK. On the shared
    connection, with thousands of calls beside a skip, the test server now and then
    broke HTTP/2 framing (the client's h2 log: a second, non-final HEADERS frame on a
    stream, "trailers frame was not EOS", then the whole connection closed with
    PROTOCOL_ERROR), and the skip under way failed with "h2 protocol error"."""

    SKIP_DEADLINE = timedelta(minutes=10)

    def __init__(self, env: WorkflowEnvironment, client: Client, skips: Client) -> None:
        self.env = env
        self.client = client  # for the workers and the calls of the simulator
        self._skips = skips  # for the clock alone

    @classmethod
    async def of(cls, env: WorkflowEnvironment) -> SimulatedClock:
        # The environment's interceptors too: awaiting a workflow's result lets time skip.
        client = await env.connect_client(
            data_converter=pydantic_data_converter,
            keep_alive_config=None,
            interceptors=env.client.config()["interceptors"],
        )
        skips = await env.connect_client(keep_alive_config=None)
        return cls(env, client, skips)

    async def now(self) -> datetime:
        response = await self._skips.test_service.get_current_time(Empty())
        return response.time.ToDatetime().replace(tzinfo=UTC)

    async def skip_to_calendar_start(self) -> datetime:
        """Move the clock to `calendar_start` of its time (a fresh server's is today's);
        returns that midnight. The clock itself is a little past it by then: it also
        runs in real time."""
        start = calendar_start(await self.now())
        await self.sleep(start - await self.now())
        return start

    async def sleep(self, duration: timedelta) -> None:
        request = SleepRequest()
        request.duration.FromTimedelta(duration)
        await self._skips.test_service.unlock_time_skipping_with_sleep(
            request, timeout=self.SKIP_DEADLINE
        )
