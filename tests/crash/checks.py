"""What the database holds for the crash and fault suites' citizens, and what is wrong
with it; for the web chat also what its page was told (the ``ack`` of each frame)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialogue.engine import SEEN, fingerprint
from dialogue.messages import (
    Address,
    Attachment,
    AttachmentKind,
    Channel,
    IncomingMessage,
    Location,
)
from tests.crash.system import rows

if TYPE_CHECKING:
    from tests.crash.channels import WebCitizen
    from tests.crash.citizens import Citizen


def complaints_of(db: Path, channel: str, user: str) -> list[dict[str, Any]]:
    found = rows(db, "SELECT c.* FROM complaints c JOIN identities i ON i.citizen_id = "
                     "c.citizen_id WHERE i.channel = ? AND i.external_id = ?", channel, user)
    out = []
    for row in found:
        complaint = dict(row)
        complaint["photos"] = [r["ref"] for r in rows(
            db, "SELECT ref FROM complaint_photos WHERE complaint_id = ? ORDER BY position",
            complaint["id"])]
        out.append(complaint)
    return out


def check_citizen(db: Path, c: Citizen, *, replies_may_fail: bool = False) -> list[str]:
    """What is wrong with what the database holds for citizen ``c``. With
    ``replies_may_fail`` (the fault suite), a step left unanswered is no failure: the
    bot's reply may have failed for good and the citizen sent the step again."""
    who = f"{c.driver.channel}:{c.driver.user}"
    found = complaints_of(db, c.driver.channel, c.driver.user)
    problems = []
    if len(found) > 1:
        problems.append(f"{who} filed once but has {len(found)} complaints")
    if c.number is not None and c.number not in [f["number"] for f in found]:
        problems.append(f"{who} was told №{c.number} but it is not in the database")
    if (c.number or c.submit_unanswered) and not found:
        problems.append(f"{who}: the submit was taken (a later press was stale), "
                        "yet there is no complaint")
    for f in found:
        if f["text"] != c.problem or f["municipality"] != "kaspiysk" or f["latitude"] is None:
            problems.append(f"{who}: complaint {f['number']} lost a step: "
                            f"{f['text']!r} {f['municipality']} {f['latitude']}")
        refs = f["photos"]
        if len(set(refs)) != len(refs):
            problems.append(f"{who}: the same photo recorded twice: {refs}")
        if not c.photos(acked=True) <= len(refs) <= c.photos():
            problems.append(f"{who}: {len(refs)} photos stored, {c.photos()} sent, "
                            f"{c.photos(acked=True)} acknowledged")
    if c.silent and not replies_may_fail:
        problems.append(f"{who}: unanswered with no kill to blame: {c.silent}")
    if c.apologies:
        problems.append(f"{who}: the bot apologised {c.apologies} times")
    if c.driver.acks:
        problems += check_web(c, found, replies_may_fail=replies_may_fail)
    return problems


def check_web(c: Citizen, found: list[dict[str, Any]], *,
              replies_may_fail: bool = False) -> list[str]:
    """The web chat's claim, frame by frame: every frame is acknowledged exactly once
    (the page sends it again until then; a second ``ack`` means it was handled twice),
    answered twice only if it was in flight at a kill, and what was acknowledged is in the
    database — each acknowledged photo, once, and the complaint once its submit was
    acknowledged."""
    d: WebCitizen = c.driver  # type: ignore[assignment]
    who = f"web:{d.user}"
    problems = []
    if d.errors:
        problems.append(f"{who}: error frames {[e.get('code') for e in d.errors]}")
    unknown = sorted(set(d.acks_of) - set(d.sent))
    if unknown:
        problems.append(f"{who}: acknowledged frames it never sent: {unknown}")
    twice = {i: lives for i, lives in d.acks_of.items() if len(lives) > 1}
    if twice:
        problems.append(f"{who}: frames acknowledged twice (handled twice), by connection: "
                        f"{twice}")
    again = sorted(i for i, on in d.answered.items() if len(on) > 1 and i not in d.at_kill)
    if again:
        problems.append(f"{who}: frames answered on two connections, not in flight at a "
                        f"kill: {again}")
    unacked = [i for i in d.sent if i not in d.acks_of]
    if unacked and not replies_may_fail:
        problems.append(f"{who}: frames never acknowledged: {unacked}")
    refs = [r for f in found for r in f["photos"]]
    acked = [f"web:{d.uploads[s.token]}" for s in c.steps if s.action == "photo" and s.acked]
    lost = [r for r in acked if r not in refs]
    if lost:
        problems.append(f"{who}: acknowledged photos not in the complaint: {lost} ({refs})")
    sent = {f"web:{u}" for u in d.uploads.values()}
    strange = [r for r in refs if r not in sent]
    if strange:
        problems.append(f"{who}: photos in the complaint it never sent: {strange}")
    if any(s.value == "cmp:submit" and s.acked for s in c.steps) and not found:
        problems.append(f"{who}: the submit was acknowledged, yet there is no complaint")
    return problems


def web_counts(citizens: list[Citizen]) -> dict[str, int]:
    """The web chat's counts for a summary line: frames sent, acknowledged, sent again
    after a reconnect, acknowledged only after that, answered on two connections (the
    replies the citizen saw twice: the frame was in flight at a kill), frames in flight at
    a kill and how many of those the engine had already persisted (it must recognise them
    when they come again), and reconnects."""
    pages: list[WebCitizen] = [c.driver for c in citizens  # type: ignore[misc]
                               if c.driver.acks]
    counts: Counter[str] = Counter()
    for d in pages:
        counts["web_frames"] += len(d.sent)
        counts["web_acked"] += len(d.acks_of)
        counts["web_resent"] += sum(len(on) > 1 for on in d.sent.values())
        counts["web_acked_after_resend"] += sum(
            1 for i, on in d.acks_of.items() if d.sent.get(i) and on[0] != d.sent[i][0])
        counts["web_answered_twice"] += sum(len(on) > 1 for on in d.answered.values())
        counts["web_reconnects"] += max(d.connections - 1, 0)
        # held at a kill, unless its ack was already on its way (it came on that connection)
        in_flight = [persisted for i, (on, persisted) in d.at_kill.items()
                     if d.acks_of.get(i, [on + 1])[0] > on]
        counts["web_in_flight_at_kill"] += len(in_flight)
        counts["web_in_flight_persisted"] += sum(in_flight)
    return {k: counts[k] for k in ("web_frames", "web_acked", "web_resent",
                                   "web_acked_after_resend", "web_answered_twice",
                                   "web_in_flight_at_kill", "web_in_flight_persisted",
                                   "web_reconnects")}


def _mark(user: str, frame: dict[str, Any]) -> Any:
    """The engine's fingerprint of a web frame, as the server turns it into a message."""
    upload = frame.get("upload_id")
    location = (Location(frame["latitude"], frame["longitude"]) if "latitude" in frame
                else None)
    msg = IncomingMessage(
        Address(Channel.WEB, user), user, text=frame.get("text", ""),
        payload=frame.get("payload"),
        attachments=(Attachment(AttachmentKind.PHOTO, upload),) if upload else (),
        location=location, received_at=datetime.fromtimestamp(frame["sent_at"] / 1000, UTC))
    return fingerprint(msg)


def note_web_in_flight(db: Path, citizens: list[Citizen]) -> None:
    """Right after a kill (the process is dead, its database file is not): for each frame a
    web page sent and still holds, note whether the engine had already persisted it (its
    fingerprint is among the conversation's last seen) or it was lost in flight. Either
    way the page sends it again, and it must be recorded once."""
    for c in citizens:
        d: WebCitizen = c.driver  # type: ignore[assignment]
        if not c.driver.acks or not d.pending:
            continue
        found = rows(db, "SELECT data FROM conversations WHERE channel = 'web' "
                         "AND user_id = ?", d.user)
        seen = (json.loads(found[0]["data"]) or {}).get(SEEN, []) if found else []
        for frame_id, data in d.pending.items():
            if d.sent[frame_id]:
                persisted = _mark(d.user, json.loads(data)) in seen
                d.at_kill[frame_id] = (d.sent[frame_id][-1], persisted)
