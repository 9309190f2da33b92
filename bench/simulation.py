"""Simulation: customer-years a minute through `tandem simulate` (issue 17's "Speed").

Tandem: `simulation.simulate` as the command runs it: a seeded cohort of `customers`
through the real lifecycles for `months` months, under the default plan and, with
`plans` 2, under high_touch too (`--compare high_touch`), both reports written. One
customer-year is one customer under one plan for twelve months.

Baseline: the bare time-skipping cost of the same simulated time on the same server: as
many bare workflows (`bench.baseline`) as the simulation has lifecycles, each sleeping
`months` monthly timers, their results awaited.

Target: >= 144 customer-years a minute, that is 200 customers x 13 months x 2 plans in
under 3 minutes.

Beside it, without a target: CPU seconds per customer-year, of every process the run
used (simulators, workers and test servers: with two plans, each plan's run is a
process of its own with a server of its own), for both. Wall time moves with the
machine's load; CPU time much less, so the two runs compare across machines and loads.
"""

from __future__ import annotations

import asyncio
import resource
import time

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from bench.bare_worker import build_bare_worker
from bench.baseline import BareInput, BareLifecycle
from bench.common import (
    BenchResult,
    Metric,
    child_pid,
    cpu_seconds,
    say,
    tandem_settings,
    time_skipping_server,
    workdir,
)
from plans import load_plan
from simulation.simulate import simulate

SIZES: dict[str, dict[str, int]] = {
    "smoke": {"customers": 2, "months": 2, "plans": 1},
    "default": {"customers": 200, "months": 13, "plans": 2},
    "full": {"customers": 400, "months": 13, "plans": 2},
}
PLANS = ("default", "high_touch")
SEED = 7
BARE_QUEUE = "bench-simulation-bare"
TARGET = 200 * 13 * 2 / 12 / 3  # customer-years a minute: issue 17's run in 3 minutes


def customer_years(customers: int, months: int, plans: int) -> float:
    return customers * months / 12 * plans


async def run(customers: int, months: int, plans: int) -> BenchResult:
    if not 1 <= plans <= len(PLANS):
        raise ValueError(f"plans must be 1 or 2, not {plans}")
    result = BenchResult("simulation", {"customers": customers, "months": months, "plans": plans})
    started = time.perf_counter()
    years = customer_years(customers, months, plans)
    with workdir("simulation") as tmp:
        say(f"simulation: {customers} customers x {months} months x {plans} plan(s)")
        # As the command runs it, on servers of its own; they and the plans' processes
        # have ended (and been waited for) when it returns, so their CPU is counted.
        began, cpu_began = time.perf_counter(), _own_and_ended_cpu()
        await simulate(customers, months, SEED, [load_plan(p) for p in PLANS[:plans]], tmp / "out")
        tandem = years / ((time.perf_counter() - began) / 60)
        tandem_cpu = (_own_and_ended_cpu() - cpu_began) / years
        say(f"simulation: {tandem:.1f} customer-years a minute, {tandem_cpu:.2f} s CPU each")
        async with time_skipping_server() as clock:
            server = child_pid("temporal-test-server")

            def cpu() -> float:
                return time.process_time() + cpu_seconds(server)

            async with build_bare_worker(clock.client, BARE_QUEUE, tandem_settings(tmp / "var")):
                began, cpu_began = time.perf_counter(), cpu()
                handles = [
                    await clock.client.start_workflow(
                        BareLifecycle.run,
                        BareInput(timers=months, timer_days=30),
                        id=f"bare-simulation-{i}",
                        task_queue=BARE_QUEUE,
                    )
                    for i in range(customers * plans)
                ]
                # One result at a time: each awaited result lets the server skip time.
                for handle in handles:
                    await result_of(handle)
                bare = years / ((time.perf_counter() - began) / 60)
                bare_cpu = (cpu() - cpu_began) / years
            say(f"simulation: baseline {bare:.1f} customer-years a minute, {bare_cpu:.2f} s CPU")
    metric = Metric("customer-years a minute", "/min", tandem, bare, f">= {TARGET:.0f}")
    metric.met = tandem >= TARGET
    result.metrics.append(metric)
    result.metrics.append(Metric("CPU a customer-year", "s", tandem_cpu, bare_cpu))
    result.seconds = time.perf_counter() - started
    return result


def _own_and_ended_cpu() -> float:
    """CPU seconds of this process and of its child processes that have ended."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


async def result_of(handle: WorkflowHandle, attempts: int = 5) -> None:
    """A bare lifecycle's result. The time-skipping server now and then sends HTTP/2
    frames the client rejects, which closes the connection under every call on it
    (docs/benchmarks.md, "h2 protocol error"); reading a result again is safe."""
    for attempt in range(1, attempts + 1):
        try:
            await handle.result()
            return
        except RPCError as error:
            if "h2 protocol error" not in str(error) or attempt == attempts:
                raise
            await asyncio.sleep(1)
