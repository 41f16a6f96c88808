"""Operators' reclassifications become labelled examples for `tsur nlu train`."""

from __future__ import annotations

from dialogue.messages import Channel
from domain.services import reclassify
from domain.storage import Database
from domain.storage.learning import reclassified_examples
from tests.fakes.dialogue import FixedClock, catalogue
from tests.integration.test_dialogue_sql import Chat, engine_on, file_complaint


async def test_only_operator_classifications_are_examples(db: Database) -> None:
    engine = engine_on(db)
    await file_complaint(Chat(engine, user_id="701", channel=Channel.WEB))
    await file_complaint(Chat(engine, user_id="702", channel=Channel.WEB),
                         "Махачкала: у нас весь день нет света в квартире и в подъезде")
    assert await reclassified_examples(db) == []
    async with db.uow() as uow:
        first = await uow.complaints.by_number(f"{FixedClock().now.year}-000001")
        assert first is not None and first.id is not None
        await reclassify(uow, catalogue(), first.id, "energy", "power_outage",
                         actor="portal:op", now=FixedClock().now)
        await uow.commit()
    assert await reclassified_examples(db) == [(first.text, "energy", "power_outage")]
