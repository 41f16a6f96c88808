"""A process that contends for the leader lease, for the failover tests:

    python -m tests.deploy.contender postgres|redis|file URL_OR_DIR [CHECK_SECONDS]

It prints ``standby <pid>`` once, ``leading <pid>`` when it takes the lead, and
``stopped <pid>`` when its duties stop; SIGTERM/SIGINT end it cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from config.leader import Leader, lease_for


async def main(kind: str, where: str, check: float) -> None:
    redis = None
    if kind == "redis":
        from notifications.ratelimit_redis import connect

        redis = connect(where)
    lease = lease_for(kind, database_url=where if kind == "postgres" else "",
                      data_dir=Path(where), redis=redis, check_seconds=check)
    pid = os.getpid()

    async def start() -> object:
        print(f"leading {pid}", flush=True)

        async def stop() -> None:
            print(f"stopped {pid}", flush=True)

        return stop

    leader = Leader(lease, start, check_seconds=check)  # type: ignore[arg-type]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"standby {pid}", flush=True)
    await leader.run(stop)
    if redis is not None:
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3
                     else 0.2))
