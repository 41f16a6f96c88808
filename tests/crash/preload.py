"""Imported once by the fork server that starts ``tsur run`` for the crash suite.

aiogram, vkbottle and the rest take several seconds to import; a crash trial needs a
fresh process after every ``kill -9``. The fork server imports them once, and each
``tsur run`` is a fork of it. ``config`` reads no environment and connects nothing at
import (the design's rule), so a forked child behaves as ``python -m config.cli run``.
"""

import aiogram  # noqa: F401
import alembic.command  # noqa: F401
import apscheduler.schedulers.asyncio  # noqa: F401
import vkbottle  # noqa: F401

import bots.telegram  # noqa: F401
import bots.telegram.outbox  # noqa: F401
import bots.vk  # noqa: F401
import bots.vk.outbox  # noqa: F401
import bots.web  # noqa: F401
import config.cli  # noqa: F401
import config.runtime  # noqa: F401
import dialogue.engine  # noqa: F401
import domain.storage.migrate  # noqa: F401
import notifications.broadcasts  # noqa: F401
import notifications.delivery  # noqa: F401
import notifications.scheduler  # noqa: F401
import portal  # noqa: F401
