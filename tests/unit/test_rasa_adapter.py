"""The Rasa adapter against a tiny local HTTP server that answers like Rasa's /model/parse
(canned JSON): mapping of intent_ranking to suggestions, unknown intents, errors, evaluation.
No Rasa needed; the real server is in tests/integration/test_rasa.py."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dialogue.classifiers.rasa import ClassifierUnavailable, RasaClassifier, evaluate_rasa
from dialogue.nlu import Suggestion

# (status, body) for one request; body bytes are sent as they are, anything else as JSON.
Reply = tuple[int, Any]


@dataclass
class FakeRasa:
    """Records requests; ``reply(method, path, json_body)`` decides each answer."""

    url: str
    reply: Callable[[str, str, Any], Reply]
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    delay: float = 0.0


def _parse_answer(ranking: list[tuple[str, float]]) -> dict[str, Any]:
    top = {"name": ranking[0][0], "confidence": ranking[0][1]} if ranking else None
    return {"text": "…", "intent": top, "entities": [],
            "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking]}


@pytest.fixture
def fake_rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa(url="", reply=lambda method, path, body: (404, {"error": "no reply"}))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.requests.append((method, self.path, body))
            if fake.delay:
                time.sleep(fake.delay)
            status, payload = fake.reply(method, self.path, body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self._answer("POST")

        def do_GET(self) -> None:
            self._answer("GET")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_intent_ranking_becomes_ranked_suggestions(fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = lambda m, p, b: (200, _parse_answer([
        ("housing.no_water", 0.71), ("housing.hot_water", 0.12), ("energy.power_outage", 0.08),
    ]))
    suggestions = await RasaClassifier(fake_rasa.url).classify("третий день нет воды")
    assert suggestions == [Suggestion("housing", "no_water", 0.71),
                           Suggestion("housing", "hot_water", 0.12),
                           Suggestion("energy", "power_outage", 0.08)]
    assert fake_rasa.requests == [("POST", "/model/parse", {"text": "третий день нет воды"})]


async def test_intents_unknown_to_the_catalogue_are_dropped(fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = lambda m, p, b: (200, _parse_answer([
        ("nlu_fallback", 0.40), ("housing.retired_category", 0.25), ("greet", 0.15),
        ("waste.container_overflow", 0.10), ("nosuchsector.x", 0.05),
    ]))
    suggestions = await RasaClassifier(fake_rasa.url).classify("мусор")
    assert [(s.sector, s.category) for s in suggestions] == [("waste", "container_overflow")]
    assert suggestions[0].confidence == pytest.approx(0.10)


async def test_suggestions_are_sorted_and_limited(fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = lambda m, p, b: (200, _parse_answer([
        ("housing.heating", 0.2), ("housing.no_water", 0.5), ("housing.lift", 0.1),
        ("housing.sewerage", 0.15), ("housing.roof_leak", 0.05)]))
    suggestions = await RasaClassifier(fake_rasa.url, limit=2).classify("текст")
    assert [s.category for s in suggestions] == ["no_water", "heating"]


async def test_only_the_top_intent_when_rasa_gives_no_ranking(fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = lambda m, p, b: (200, {"text": "x", "entities": [],
                                             "intent": {"name": "energy.voltage",
                                                        "confidence": 0.9}})
    assert await RasaClassifier(fake_rasa.url).classify("лампочки мигают") == [
        Suggestion("energy", "voltage", 0.9)]


async def test_slash_commands_and_blank_text(fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = lambda m, p, b: (200, _parse_answer([("energy.voltage", 0.9)]))
    classifier = RasaClassifier(fake_rasa.url)
    assert await classifier.classify("   ") == []
    assert await classifier.classify("/") == []
    assert fake_rasa.requests == []
    # Rasa would read "/energy.voltage" as the intent itself rather than classify it.
    await classifier.classify("/energy.voltage скачет напряжение")
    assert fake_rasa.requests[-1][2] == {"text": "energy.voltage скачет напряжение"}


async def test_long_texts_are_cut_to_256_words(fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = lambda m, p, b: (200, _parse_answer([("housing.no_water", 0.9)]))
    await RasaClassifier(fake_rasa.url).classify(" ".join(["вода"] * 1000))
    assert fake_rasa.requests[0][2]["text"].split() == ["вода"] * 256


async def test_a_base_url_with_a_path_prefix(fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = lambda m, p, b: (200, _parse_answer([("housing.no_water", 0.9)]))
    classifier = RasaClassifier(fake_rasa.url + "/nlu/")
    assert classifier.base_url == fake_rasa.url + "/nlu"
    await classifier.classify("нет воды")
    assert fake_rasa.requests[0][1] == "/nlu/model/parse"


@pytest.mark.parametrize(("status", "body", "message"), [
    (500, {"status": "failure", "reason": "ParsingError"}, "HTTP 500"),
    (409, {"reason": "NoAgent"}, "HTTP 409"),
    (200, b"<html>proxy error</html>", "non-JSON"),
    (200, ["not", "a", "parse", "result"], "answered"),
    (200, {"intent_ranking": "nonsense"}, "not a list"),
])
async def test_bad_answers_raise_unavailable(fake_rasa: FakeRasa, status: int, body: Any,
                                             message: str) -> None:
    fake_rasa.reply = lambda m, p, b: (status, body)
    with pytest.raises(ClassifierUnavailable, match=message):
        await RasaClassifier(fake_rasa.url).classify("нет воды")


async def test_nobody_listening_raises_unavailable() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ClassifierUnavailable, match="unavailable") as caught:
        await RasaClassifier(url, timeout=2).classify("нет воды")
    assert url in str(caught.value)


async def test_a_slow_server_raises_unavailable_after_the_timeout(fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = lambda m, p, b: (200, _parse_answer([("housing.no_water", 0.9)]))
    fake_rasa.delay = 2.0
    started = time.monotonic()
    with pytest.raises(ClassifierUnavailable, match="timed out"):
        await RasaClassifier(fake_rasa.url, timeout=0.3).classify("нет воды")
    assert time.monotonic() - started < 1.5


async def test_status_reports_the_loaded_model(fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = lambda m, p, b: (200, {"model_file": "tsur-nlu.tar.gz", "model_id": "x",
                                             "num_active_training_jobs": 0})
    assert (await RasaClassifier(fake_rasa.url).status())["model_file"] == "tsur-nlu.tar.gz"
    assert fake_rasa.requests == [("GET", "/status", None)]
    fake_rasa.reply = lambda m, p, b: (409, {"reason": "NoAgent"})
    with pytest.raises(ClassifierUnavailable, match="409"):
        await RasaClassifier(fake_rasa.url).status()


def test_not_an_http_url() -> None:
    with pytest.raises(ValueError, match="http"):
        RasaClassifier("127.0.0.1:5005")


def test_evaluate_rasa_reports_like_the_embedded_evaluation(fake_rasa: FakeRasa,
                                                            tmp_path: Path) -> None:
    answers = {"нет воды": "housing.no_water", "яма на дороге": "roads.potholes",
               "свет отключили": "housing.heating", "непонятно что": "greet"}
    fake_rasa.reply = lambda m, p, b: (200, _parse_answer([(answers[b["text"]], 0.8)]))
    data = tmp_path / "appeals.csv"
    data.write_text("text,sector\nнет воды,housing\nяма на дороге,roads\n"
                    "свет отключили,energy\nнепонятно что,other\n", encoding="utf-8")
    report = evaluate_rasa(fake_rasa.url, data)
    lines = report.splitlines()
    # 3 of 4 right: "свет" predicted housing; "greet" is unknown, so the prediction is "other".
    assert lines[-1] == "macro_f1=0.667 accuracy=0.750 n=4"
    assert lines[0].split() == ["sector", "precision", "recall", "f1", "support"]
    housing = next(line for line in lines if line.startswith("housing "))
    assert housing.split()[1:] == ["0.500", "1.000", "0.667", "1"]
    assert len(fake_rasa.requests) == 4
