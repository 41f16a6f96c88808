"""The one place that wires concrete classes together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from config.settings import Settings
from dialogue.engine import Engine
from dialogue.nlu import Classifier, FallbackClassifier, KeywordClassifier
from domain.calendar import WorkingCalendar
from domain.catalogue import Catalogue, load_catalogue
from domain.storage.uow import Database
from notifications.delivery import DeliveryWorker
from notifications.handlers import EventHandler, StatusNotifier, combine
from notifications.messenger import Messenger
from notifications.ratelimit import DEFAULT_LIMITS, RateLimit, RateLimiter
from notifications.surveys import SurveyHandler

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class System:
    settings: Settings
    database: Database
    catalogue: Catalogue
    calendar: WorkingCalendar
    engine: Engine
    clock: Callable[[], datetime] = utc_now
    # makes a channel's rate limiter: per process by default, shared through Redis when
    # TSUR_REDIS_URL is set (config.roles)
    limiters: Callable[[str, RateLimit], Any] = field(
        default=lambda channel, limit: RateLimiter(limit))

    def delivery_worker(self, channel: str, messenger: Messenger, *,
                        limit: RateLimit | None = None) -> DeliveryWorker:
        """An outbox worker for ``channel``, paced at ``limit`` (default: the platform's)."""
        limiter = self.limiters(channel, limit or DEFAULT_LIMITS.get(channel, RateLimit()))
        return DeliveryWorker(self.database.uow, channel, messenger, limiter=limiter,
                              clock=self.clock)

    async def close(self) -> None:
        await self.database.dispose()


def make_classifier(settings: Settings, catalogue: Catalogue, *,
                    model_dir: Path | None = None) -> Classifier:
    """The classifier ``TSUR_NLU`` names: the embedded model (trained from the shipped
    examples at start-up unless ``TSUR_NLU_MODEL`` gives a trained one), Rasa, or keywords."""
    if settings.nlu == "rasa":
        from dialogue.classifiers.rasa import RasaClassifier

        # while the Rasa server is down, citizens are served by the keyword classifier
        return FallbackClassifier(RasaClassifier(settings.rasa_url, catalogue=catalogue),
                                  KeywordClassifier(catalogue))
    if settings.nlu == "keyword":
        return KeywordClassifier(catalogue)
    from dialogue.classifiers.training import load, load_shipped

    if model_dir or settings.nlu_model:
        return load(model_dir or settings.nlu_model)
    return load_shipped(settings.data_dir / "nlu-cache")  # trained on the first start only


def bootstrap(settings: Settings, *, clock: Callable[[], datetime] = utc_now,
              classifier: Classifier | None = None) -> System:
    """Build the system from settings; connects lazily (nothing happens at import)."""
    catalogue = load_catalogue(settings.catalogue)
    # every commit that records complaint events writes the citizen's notices with it
    surveys = SurveyHandler(reminder_after=timedelta(hours=settings.survey_reminder_hours),
                            followup_after=timedelta(days=settings.survey_followup_days),
                            reopen_within=timedelta(days=settings.survey_reopen_days),
                            backoffice_chat="", operator_language=settings.language)
    handlers: list[EventHandler] = [StatusNotifier(catalogue), surveys]
    if settings.telegram_backoffice_chat_id:
        # without a back-office group its rows would only pile up in the outbox
        from bots.backoffice import BackofficeNotifier

        handlers.append(BackofficeNotifier(catalogue))
    database = Database.from_url(settings.sqlalchemy_url, clock=clock,
                                 event_handler=combine(*handlers),
                                 pool_size=settings.db_pool_size,
                                 max_overflow=settings.db_max_overflow)
    calendar = WorkingCalendar(
        tz=settings.timezone,
        day_start=settings.workday_start,
        day_end=settings.workday_end,
        extra_holidays=settings.extra_holidays,
        extra_workdays=settings.extra_workdays,
    )
    engine = Engine(
        database.uow,
        catalogue,
        calendar,
        classifier or make_classifier(settings, catalogue),
        clock,
        default_language=settings.language,
        confidence_threshold=settings.nlu_threshold,
    )
    return System(settings, database, catalogue, calendar, engine, clock)
