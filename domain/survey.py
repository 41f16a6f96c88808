"""The satisfaction survey aggregate: asked when a complaint is closed, answered with buttons.

One survey per closure. The citizen answers "was the problem solved?" (yes/no), then rates
the answer 1–5, then may leave a comment. One reminder goes out if the first question is
unanswered after a day; a follow-up "is it still solved?" goes out some days later. "Not
solved", a rating of 2 or less, or "no longer solved" in the follow-up reopen the complaint
while the survey's reopen window lasts (default 30 days from closure; a follow-up answer
gets the same length of window from when the follow-up was sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.complaint import TRANSITIONS, Status
from domain.ports import UnitOfWork
from domain.services import Forbidden, NotFound, change_status

LOW_RATING = 2  # this rating or lower reopens the complaint
SURVEY_ACTOR = "survey"


class SurveyState(StrEnum):
    ASKED = "asked"  # invitation sent: was the problem solved?
    RATING = "rating"  # solved answered; waiting for the 1–5 rating
    COMMENT = "comment"  # rated; an optional comment may follow
    ANSWERED = "answered"  # first round complete
    FOLLOWUP = "followup"  # "is it still solved?" asked
    FINISHED = "finished"  # nothing more to ask
    SUPERSEDED = "superseded"  # the complaint was closed again; a newer survey replaces it


class ReopenReason(StrEnum):
    NOT_SOLVED = "not_solved"
    LOW_RATING = "low_rating"
    NOT_FIXED = "not_fixed"  # the follow-up said it is broken again


class WrongSurveyState(ValueError):
    """An answer that does not fit the survey's state (a stale or forged button)."""


@dataclass(slots=True)
class Survey:
    complaint_id: int
    citizen_id: int
    channel: str  # the complaint's channel: where questions go
    created_at: datetime  # when the complaint was closed
    reopen_until: datetime
    reminder_due_at: datetime | None  # None: no reminder (answered or superseded)
    followup_due_at: datetime | None  # None: no follow-up ("not solved", reopened, ...)
    state: SurveyState = SurveyState.ASKED
    solved: bool | None = None
    rating: int | None = None
    comment: str | None = None
    answered_at: datetime | None = None  # first answer ("solved?")
    reminder_sent_at: datetime | None = None
    followup_sent_at: datetime | None = None
    still_solved: bool | None = None
    followup_answered_at: datetime | None = None
    reopened_at: datetime | None = None
    reopen_reason: str | None = None
    id: int | None = None

    @classmethod
    def start(cls, complaint_id: int, citizen_id: int, channel: str, at: datetime, *,
              reminder_after: timedelta, followup_after: timedelta,
              reopen_within: timedelta) -> Survey:
        return cls(complaint_id, citizen_id, channel, at, reopen_until=at + reopen_within,
                   reminder_due_at=at + reminder_after, followup_due_at=at + followup_after)

    def _expect(self, *states: SurveyState) -> None:
        if self.state not in states:
            raise WrongSurveyState(f"survey {self.id} is {self.state}")

    def answer_solved(self, solved: bool, at: datetime) -> ReopenReason | None:
        """The first question; returns a reason when the complaint should be reopened."""
        self._expect(SurveyState.ASKED)
        self.solved, self.answered_at = solved, at
        self.reminder_due_at = None
        self.state = SurveyState.RATING
        if solved:
            return None
        self.followup_due_at = None
        return self._reopen_if_open(ReopenReason.NOT_SOLVED, at)

    def rate(self, rating: int, at: datetime) -> ReopenReason | None:
        self._expect(SurveyState.RATING)
        if not 1 <= rating <= 5:
            raise WrongSurveyState(f"rating {rating} is out of range")
        self.rating = rating
        self.state = SurveyState.COMMENT
        if rating > LOW_RATING:
            return None
        return self._reopen_if_open(ReopenReason.LOW_RATING, at)

    def finish_comment(self, comment: str | None) -> None:
        """A comment (or ``None`` for "skip") ends the first round."""
        self._expect(SurveyState.COMMENT)
        self.comment = comment
        self.state = SurveyState.ANSWERED

    def ask_followup(self, at: datetime) -> None:
        self.followup_sent_at = at
        self.reminder_due_at = None
        self.state = SurveyState.FOLLOWUP

    def answer_followup(self, still_solved: bool, at: datetime) -> ReopenReason | None:
        self._expect(SurveyState.FOLLOWUP)
        self.still_solved, self.followup_answered_at = still_solved, at
        self.state = SurveyState.FINISHED
        if still_solved:
            return None
        return self._reopen_if_open(ReopenReason.NOT_FIXED, at)

    def supersede(self) -> None:
        self.state = SurveyState.SUPERSEDED
        self.reminder_due_at = self.followup_due_at = None

    def _reopen_if_open(self, reason: ReopenReason, at: datetime) -> ReopenReason | None:
        if self.reopened_at is not None or at > self._window_end():
            return None
        self.reopened_at, self.reopen_reason = at, reason.value
        self.followup_due_at = None
        return reason

    def _window_end(self) -> datetime:
        if self.state is SurveyState.FINISHED and self.followup_sent_at is not None:
            return max(self.reopen_until,
                       self.followup_sent_at + (self.reopen_until - self.created_at))
        return self.reopen_until

    @property
    def is_live(self) -> bool:
        """Still waiting for something from the citizen."""
        return self.state in (SurveyState.ASKED, SurveyState.RATING, SurveyState.COMMENT,
                              SurveyState.FOLLOWUP)


# --- use cases (the caller commits) ---------------------------------------------------------

async def own_survey(uow: UnitOfWork, survey_id: int, citizen_id: int) -> Survey:
    """The survey if it exists and belongs to ``citizen_id``; NotFound/Forbidden otherwise."""
    survey = await uow.surveys.get(survey_id)
    if survey is None:
        raise NotFound(f"survey {survey_id}")
    if survey.citizen_id != citizen_id:
        raise Forbidden("not your survey")
    return survey


async def _reopen(uow: UnitOfWork, survey: Survey, reason: ReopenReason | None,
                  now: datetime) -> None:
    await uow.surveys.save(survey)
    if reason is None:
        return
    complaint = await uow.complaints.get(survey.complaint_id)
    if complaint is None or Status.REOPENED not in TRANSITIONS[complaint.status]:
        survey.reopened_at = survey.reopen_reason = None  # somebody reopened it already
        await uow.surveys.save(survey)
        return
    await change_status(uow, survey.complaint_id, Status.REOPENED, actor=SURVEY_ACTOR, now=now,
                        reason=f"survey:{reason.value}")


async def answer_solved(uow: UnitOfWork, survey_id: int, citizen_id: int, solved: bool, *,
                        now: datetime) -> Survey:
    survey = await own_survey(uow, survey_id, citizen_id)
    await _reopen(uow, survey, survey.answer_solved(solved, now), now)
    return survey


async def rate(uow: UnitOfWork, survey_id: int, citizen_id: int, rating: int, *,
               now: datetime) -> Survey:
    survey = await own_survey(uow, survey_id, citizen_id)
    await _reopen(uow, survey, survey.rate(rating, now), now)
    return survey


async def comment(uow: UnitOfWork, survey_id: int, citizen_id: int, text: str | None) -> Survey:
    survey = await own_survey(uow, survey_id, citizen_id)
    survey.finish_comment(text)
    await uow.surveys.save(survey)
    return survey


async def answer_followup(uow: UnitOfWork, survey_id: int, citizen_id: int,
                          still_solved: bool, *, now: datetime) -> Survey:
    survey = await own_survey(uow, survey_id, citizen_id)
    await _reopen(uow, survey, survey.answer_followup(still_solved, now), now)
    return survey
