"""Run the probe's consumer in a process of its own, for the crash and shutdown tests.

``--kill before_db_commit`` or ``after_db_commit`` SIGKILLs this process at that point of
the first batch that handles something: a real crash, at an exact place.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Sequence

from shared.kafka.consumer import ConsumerHooks
from shared.observability.logs import configure_logging
from shared.service import ServiceRuntime
from shared.settings import PlatformSettings
from shared.testing.probe.service import DEFINITION, ProbeSettings


def _die(_records: Sequence[object]) -> None:
    if _records:
        os.kill(os.getpid(), signal.SIGKILL)


async def main(args: argparse.Namespace) -> None:
    settings = ProbeSettings(
        database_url=args.database_url,
        consumer_max_batch=args.max_batch,
        platform=PlatformSettings(
            kafka_bootstrap_servers=args.bootstrap, topic_namespace=args.namespace
        ),
    )
    hooks = ConsumerHooks(
        before_db_commit=_die if args.kill == "before_db_commit" else None,
        after_db_commit=_die if args.kill == "after_db_commit" else None,
    )
    configure_logging(service="probe", fmt="json")
    runtime = ServiceRuntime(DEFINITION, settings, consumer_hooks=hooks)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await runtime.start()
    await runtime.consumers[0].started.wait()
    print("ready", flush=True)
    await stop.wait()
    await runtime.stop()
    print("stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--max-batch", type=int, default=500)
    parser.add_argument(
        "--kill", choices=["none", "before_db_commit", "after_db_commit"], default="none"
    )
    asyncio.run(main(parser.parse_args()))
