"""The optional Rasa backend: a Rasa 3.6 server (``rasa run --enable-api``, started by
``tools/rasa.sh serve``) classifies, tsur asks it over HTTP.

Rasa lives in its own Python 3.10 process; nothing of it is imported here. Requests use the
standard library (``http.client``) in a worker thread so the event loop never blocks, and
the dialogue core stays free of web frameworks. The model's intents are
``<sector>.<category>``; ``intent_ranking`` becomes the ranked suggestions, keeping only
intents the catalogue knows (a model trained on older data may know retired categories).
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dialogue.nlu import Suggestion
from domain.catalogue import Catalogue, load_catalogue

#: Texts are cut to this many words, as they were for training (tools/rasa.sh train): DIET
#: pads to the longest text, and an appeal's topic is stated in its first lines.
MAX_WORDS = 256


class ClassifierUnavailable(RuntimeError):
    """The classification service cannot be reached or did not answer sensibly."""


class RasaClassifier:
    """Implements :class:`dialogue.nlu.Classifier` by POSTing to ``{base_url}/model/parse``.

    :param base_url: the Rasa server, e.g. ``http://127.0.0.1:5005``.
    :param timeout: seconds for connecting and for the answer.
    :param catalogue: which ``(sector, category)`` pairs exist; the default catalogue when
        ``None``.
    :param limit: at most this many suggestions.
    :raises ClassifierUnavailable: from :meth:`classify` on connection errors, timeouts,
        HTTP errors and answers that are not Rasa's parse result.
    """

    def __init__(self, base_url: str, *, timeout: float = 5.0,
                 catalogue: Catalogue | None = None, limit: int = 5) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._limit = limit
        catalogue = catalogue if catalogue is not None else load_catalogue()
        self._known = frozenset((s.slug, c.slug) for s in catalogue.sectors
                                for c in s.categories)

    @property
    def base_url(self) -> str:
        scheme = "https" if self._https else "http"
        port = f":{self._port}" if self._port else ""
        return f"{scheme}://{self._host}{port}{self._prefix}"

    async def classify(self, text: str) -> list[Suggestion]:
        """Suggestions ranked best first, from Rasa's ``intent_ranking``."""
        # Rasa reads a message starting with "/" as an intent given by name ("/greet"), not
        # as text to classify; a citizen's slash means nothing, so it goes.
        text = " ".join(text.strip().lstrip("/").split()[:MAX_WORDS])
        if not text:
            return []
        answer = await asyncio.to_thread(self._post, "/model/parse", {"text": text})
        return self.suggestions(answer)

    def suggestions(self, answer: Any) -> list[Suggestion]:
        """The suggestions of one ``/model/parse`` answer (known intents, best first)."""
        if not isinstance(answer, dict):
            raise ClassifierUnavailable(f"Rasa at {self.base_url} answered {answer!r:.200}")
        ranking = answer.get("intent_ranking")
        if ranking is None:  # a pipeline with ranking_length 0 reports only the top intent
            top = answer.get("intent")
            ranking = [top] if isinstance(top, dict) and top.get("name") else []
        if not isinstance(ranking, list):
            raise ClassifierUnavailable(f"Rasa at {self.base_url}: intent_ranking is not a list")
        result: list[Suggestion] = []
        for entry in ranking:
            suggestion = self._suggestion(entry)
            if suggestion is not None:
                result.append(suggestion)
        result.sort(key=lambda s: -s.confidence)
        return result[: self._limit]

    def _suggestion(self, entry: Any) -> Suggestion | None:
        if not isinstance(entry, dict):
            return None
        sector, dot, category = str(entry.get("name") or "").partition(".")
        if not dot or (sector, category) not in self._known:
            return None
        try:
            confidence = float(entry.get("confidence", 0.0))
        except (TypeError, ValueError):
            return None
        return Suggestion(sector, category, round(min(max(confidence, 0.0), 1.0), 4))

    async def status(self) -> dict[str, Any]:
        """Rasa's ``/status``: the loaded model's file and id. Raises
        :class:`ClassifierUnavailable` while no model is loaded (Rasa answers 409)."""
        answer = await asyncio.to_thread(self._request, "GET", "/status", None)
        if not isinstance(answer, dict):
            raise ClassifierUnavailable(f"Rasa at {self.base_url}: odd /status {answer!r:.200}")
        return answer

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        return self._request("POST", path, payload)

    def _request(self, method: str, path: str, payload: dict[str, Any] | None) -> Any:
        factory = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = factory(self._host, self._port, timeout=self._timeout)
        body = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = f"{self.base_url}{path}"
        try:
            connection.request(method, self._prefix + path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as error:  # timeouts are OSErrors
            raise ClassifierUnavailable(f"Rasa at {url} is unavailable: {error!r}") from error
        finally:
            connection.close()
        if response.status != 200:
            raise ClassifierUnavailable(
                f"Rasa at {url} answered HTTP {response.status}: {raw[:200]!r}")
        try:
            return json.loads(raw)
        except ValueError as error:
            raise ClassifierUnavailable(f"Rasa at {url} answered non-JSON: {raw[:200]!r}") \
                from error


def evaluate_rasa(base_url: str, data_csv: Path, *, timeout: float = 30.0,
                  concurrency: int = 4) -> str:
    """The report of :func:`dialogue.classifiers.evaluate.format_report` for the Rasa server
    at ``base_url`` on a CSV with columns ``text,sector``: the top suggestion's sector is
    the prediction (``"other"`` when Rasa suggests no known intent)."""
    from dialogue.classifiers.evaluate import compute, format_report
    from dialogue.classifiers.training import load_csv

    rows = load_csv(data_csv)
    classifier = RasaClassifier(base_url, timeout=timeout, limit=1)
    predicted = asyncio.run(_top_sectors(classifier, [text for text, _, _ in rows],
                                         concurrency))
    return format_report(compute([sector for _, sector, _ in rows], predicted))


async def _top_sectors(classifier: RasaClassifier, texts: Sequence[str],
                       concurrency: int) -> list[str]:
    gate = asyncio.Semaphore(concurrency)

    async def one(text: str) -> str:
        async with gate:
            suggestions = await classifier.classify(text)
        return suggestions[0].sector if suggestions else "other"

    return list(await asyncio.gather(*(one(text) for text in texts)))
