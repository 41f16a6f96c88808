"""The body of one forked ``tsur run``: environment, log file, then ``config.cli.main``."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOLD_ACKS = "CRASH_WEB_HOLD_ACKS"  # in a trial's env: hold acks of frames with this id prefix


def _hold_acks(prefix: str) -> None:
    """The web chat never sends the ``ack`` of a frame whose id starts with ``prefix``:
    it stops right before, the frame persisted and answered, until the process is
    killed (the window a real kill hits only by chance)."""
    import asyncio

    from bots.web import server

    ack = server._ack

    async def held(ws: object, frame_id: str | None) -> None:
        if frame_id is not None and frame_id.startswith(prefix):
            await asyncio.Event().wait()
        await ack(ws, frame_id)  # type: ignore[arg-type]

    server._ack = held  # type: ignore[assignment]


def run_tsur(env: dict[str, str], log_path: str, lease_seconds: float | None,
             backoff: tuple[float, float, float] | None,
             broadcast_batch: int | None = None) -> None:
    """What ``python -m config.cli run`` does, in a fork of the preloaded server.

    ``lease_seconds`` and ``backoff`` (base, factor, cap) shorten the outbox worker's
    claim lease and retry backoff (``TSUR_OUTBOX_*`` for the Telegram and VK workers, the
    factor stays 2; patched defaults for the web chat's): a trial cannot wait the
    production two minutes for a killed worker's claim to run out.
    ``broadcast_batch`` makes the scheduler write a broadcast's recipients in smaller
    transactions (the default 1000 would write a test's audience in one).
    """
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    for name in [n for n in os.environ if n.startswith("TSUR_")]:
        del os.environ[name]
    os.environ.update(env)
    # the Telegram and VK workers take these from TSUR_OUTBOX_*; the web chat's from the
    # defaults patched below
    if lease_seconds is not None:
        os.environ.setdefault("TSUR_OUTBOX_LEASE_SECONDS", str(lease_seconds))
    if backoff is not None:
        os.environ.setdefault("TSUR_OUTBOX_RETRY_SECONDS", str(backoff[0]))
        os.environ.setdefault("TSUR_OUTBOX_RETRY_MAX_SECONDS", str(backoff[2]))
    os.chdir(ROOT)
    from notifications.delivery import Backoff, DeliveryWorker

    defaults = DeliveryWorker.__init__.__kwdefaults__
    if lease_seconds is not None:
        defaults["lease"] = timedelta(seconds=lease_seconds)
    if backoff is not None:
        defaults["backoff"] = Backoff(*backoff)
    if broadcast_batch is not None:
        from notifications.broadcasts import BroadcastService

        BroadcastService.__init__.__kwdefaults__["batch_size"] = broadcast_batch
    if env.get(HOLD_ACKS):
        _hold_acks(env[HOLD_ACKS])
    from config.cli import main

    code = main(["run"])
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
