"""The web chat page's own words (its dialogue text comes from the engine)."""

from __future__ import annotations

import json

from bots.texts import N_, translate

LABELS: dict[str, str] = {
    "title": N_("Dagestan Regional Management Center"),
    "intro": N_("Tell us what happened: we will pass your request to the responsible agency "
                "and let you know the result."),
    "placeholder": N_("Type a message…"),
    "send": N_("Send"),
    "attach": N_("Attach a photo"),
    "location": N_("Send my location"),
    "shareLocation": N_("📍 Send my location"),
    "connecting": N_("Connecting…"),
    "online": N_("Online"),
    "offline": N_("Offline, reconnecting…"),
    "uploading": N_("Uploading the photo…"),
    "uploadFailed": N_("The photo could not be uploaded."),
    "tooBig": N_("The file is too large."),
    "tooLong": N_("The message is too long, please shorten it."),
    "noGeo": N_("Your browser cannot tell your location. Please type the address."),
    "geoDenied": N_("Could not get your location. Please type the address."),
    "myLocation": N_("📍 My location"),
    "photo": N_("📷 Photo"),
}


def labels_json(language: str) -> str:
    """The labels in ``language`` as JSON that is safe inside a ``<script>`` element."""
    labels = {key: translate(msgid, language) for key, msgid in LABELS.items()}
    return json.dumps(labels, ensure_ascii=False).replace("<", "\\u003c")
