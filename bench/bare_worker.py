"""The baseline's worker, with Tandem's worker settings (workflow runner, activity thread
pool and concurrency), in this process or as a process of its own for the memory benchmark:

    python -m bench.bare_worker --address 127.0.0.1:7233 --task-queue bench-bare
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.baseline import BareLifecycle, noop
from settings import Settings
from worker import worker_options, workflow_runner


def build_bare_worker(client: Client, task_queue: str, settings: Settings) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareLifecycle],
        workflow_runner=workflow_runner(settings),
        activities=[noop],
        **worker_options(),
    )


async def _serve(address: str, namespace: str, task_queue: str) -> None:
    client = await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter
    )
    # The environment's TANDEM_* settings, as `tandem worker` reads them.
    worker = build_bare_worker(client, task_queue, Settings())
    print(f"Worker polling task queue {task_queue!r} on {address}", flush=True)
    await worker.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.address, args.namespace, args.task_queue))


if __name__ == "__main__":
    main()
