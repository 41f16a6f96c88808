"""Citizens who file a complaint step by step in Telegram, VK or the web chat, and keep
going across ``kill -9``: each looks at what the bot said last and does what it asks.

A step is *acknowledged* when the bot answers it. A step that got no answer because the
process died is sent again once the bot is back — what a person does — unless the bot's
last words show it was taken already.

The web chat acknowledges a step itself (an ``ack`` frame once it is persisted and
answered) and its page sends an unacknowledged step again after a reconnect, unchanged:
there the citizen waits for the ``ack`` however many kills it takes, and never types a
step again.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError

# the drivers and the checks, where the suites look for them
from tests.crash.channels import Driver, Shown
from tests.crash.channels import TelegramCitizen as TelegramCitizen
from tests.crash.channels import VkCitizen as VkCitizen
from tests.crash.channels import WebCitizen as WebCitizen
from tests.crash.checks import check_citizen as check_citizen
from tests.crash.checks import complaints_of as complaints_of
from tests.crash.harness import Trials

KASPIYSK = (42.8816, 47.6389)
REGISTERED = re.compile(r"№(\S+) зарегистрировано")
APOLOGY = "что-то пошло не так"
GRACE = 3.0  # seconds a restarted bot gets to answer a step sent before the kill
SILENCE = 30.0  # no answer for this long with no kill in between is a failure
SETTLE = 0.3  # a reply may be several messages: wait this long for more


# --- the citizen ---------------------------------------------------------------------------

@dataclass
class Step:
    action: str  # text | press | photo | location
    value: str = ""
    token: Any = None  # what the fake returned (a Telegram update, a VK event)
    acked: bool = False
    life: int = 0  # the life during which it was sent


@dataclass
class Citizen:
    """Files one complaint through ``driver``; records every step and its fate."""

    driver: Driver
    trials: Trials
    problem: str
    steps: list[Step] = field(default_factory=list)
    number: str | None = None
    submit_unanswered: bool = False  # pressed submit, then was shown the main menu
    silent: list[Step] = field(default_factory=list)  # no answer, and no kill to blame
    apologies: int = 0
    patience: float = SILENCE  # seconds to wait for an answer when no kill intervened

    @property
    def acked(self) -> list[Step]:
        return [s for s in self.steps if s.acked]

    def photos(self, acked: bool | None = None) -> int:
        return sum(1 for s in self.steps if s.action == "photo"
                   and (acked is None or s.acked == acked))

    def decide(self, burst: list[Shown]) -> Step | None:
        payloads = {p for m in burst for p in m.payloads}
        for m in burst:
            found = REGISTERED.search(m.text)
            if found:
                self.number = found.group(1)
                return None
        pressed_submit = any(s.value == "cmp:submit" for s in self.steps)
        if pressed_submit and "menu:new" in payloads:
            self.submit_unanswered = True  # the first press went through, its answer did not
            return None
        if "cls:yes" in payloads:
            return Step("press", "cls:yes")
        if "photo:done" in payloads:
            return Step("photo") if self.photos(acked=True) == 0 else Step("press", "photo:done")
        if any(m.location for m in burst) or "loc:skip" in payloads:
            return Step("location")
        for payload in ("mun:yes", "consent:yes", "cmp:submit"):
            if payload in payloads:
                return Step("press", payload)
        if not burst or "menu:new" in payloads:
            return Step("text", self.problem)
        return Step("wait")  # the rest of the answer is still on its way

    async def run(self) -> None:
        burst: list[Shown] = []
        start = 0
        last: Step | None = None
        waiting_since: float | None = None
        while (step := self.decide(burst)) is not None:
            if step.action == "wait":  # a partial answer: the rest should follow
                waiting_since = waiting_since or time.monotonic()
                assert last is not None
                if not self._gave_up(last, waiting_since):
                    await asyncio.sleep(0.1)
                    burst = self.driver.shown()[start:]
                    continue
                step = Step(last.action, last.value)  # the rest is lost: send it again
            waiting_since = None
            await self.trials.when_up()
            before = len(self.driver.shown())
            step.life = len(self.trials.starts) - 1
            try:
                await self.driver.connect()
                step.token = await self._do(step)
            except (ClientError, ConnectionError, RuntimeError):
                await asyncio.sleep(0.05)  # the web chat's server died under us: try again
                continue
            self.steps.append(step)
            last = step
            reply = await self._reply(before, step)
            if reply is not None:
                step.acked = True
                burst, start = reply, before
                self.apologies += sum(APOLOGY in m.text for m in reply)

    def _gave_up(self, step: Step, since: float) -> bool:
        """Whether the rest of a partial answer to ``step`` will not come: the bot was
        killed after the first part and, restarted, said nothing more; or (no kill) the
        citizen's patience ran out, which counts as a silent step."""
        now = time.monotonic()
        if len(self.trials.starts) - 1 > step.life:
            return (self.trials.up.is_set() and len(self.trials.ready_at) > step.life + 1
                    and now - max(self.trials.ready_at[-1], since) > GRACE)
        if now - since > self.patience:
            self.silent.append(step)
            return True
        return False

    async def _do(self, step: Step) -> Any:
        d = self.driver
        if step.action == "text":
            return await d.text(step.value)
        if step.action == "press":
            return await d.press(step.value)
        if step.action == "photo":
            return await d.photo()
        return await d.location(*KASPIYSK)

    async def _reply(self, before: int, step: Step) -> list[Shown] | None:
        """The bot's answer to ``step``, or None if the bot was killed and, restarted, has
        not answered within :data:`GRACE` seconds."""
        if self.driver.acks:
            return await self._acked(before, step)
        sent_at = time.monotonic()
        life = len(self.trials.starts)
        while len(self.driver.shown()) <= before:
            now = time.monotonic()
            if len(self.trials.starts) > life or self.trials.current is None:
                ready = self.trials.ready_at[-1] if self.trials.ready_at else now
                if (self.trials.up.is_set() and len(self.trials.ready_at) > life
                        and now - ready > GRACE):
                    return None
            elif now - sent_at > self.patience:
                self.silent.append(step)
                return None
            await asyncio.sleep(0.03)
        count = len(self.driver.shown())
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < SETTLE:
            await asyncio.sleep(0.05)
            if len(self.driver.shown()) != count:
                count, quiet_since = len(self.driver.shown()), time.monotonic()
        return self.driver.shown()[before:]


    async def _acked(self, before: int, step: Step) -> list[Shown] | None:
        """The bot's answer to ``step`` once the channel acknowledged it (the replies came
        before the ``ack``), or None — a silent step — if it was not acknowledged within
        :attr:`patience` of being sent or of the last restart."""
        sent_at = time.monotonic()
        while not self.driver.is_acked(step.token):
            now = time.monotonic()
            if self.trials.current is not None and self.trials.ready_at \
                    and now - max(sent_at, self.trials.ready_at[-1]) > self.patience:
                self.silent.append(step)
                return None
            await asyncio.sleep(0.03)
        return self.driver.shown()[before:]
