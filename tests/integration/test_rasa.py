"""The Rasa backend for real: ``tools/rasa.sh setup`` builds the Python 3.10 venv, a small
model is trained with ``rasa/config.test.yml`` on the shipped nlu.yml, ``rasa run
--enable-api`` serves it on a free 127.0.0.1 port, and :class:`RasaClassifier` talks to it.

Skipped (with the reason shown) only where no Python 3.10 exists. Where one does, a failing
setup, training or server start fails the tests. The trained model is cached outside the
work tree, keyed by a hash of the training data, the config and the requirements
(``TSUR_RASA_CACHE``, default ``~/.cache/tsur/rasa-test-models``), so a later run or a
fresh clone skips training: setup from scratch takes about 2 minutes, training about 35 s,
the server about 20 s to load.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialogue.classifiers.rasa import ClassifierUnavailable, RasaClassifier, evaluate_rasa
from domain.catalogue import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "rasa.sh"
NLU = ROOT / "dialogue" / "classifiers" / "data" / "nlu.yml"
CONFIG = ROOT / "rasa" / "config.test.yml"
REQUIREMENTS = ROOT / "rasa" / "requirements.txt"
MODEL_NAME = "tsur-nlu"
SETUP_TIMEOUT = 1200  # from scratch: about 2 minutes with a warm pip cache
TRAIN_TIMEOUT = 600
START_TIMEOUT = 180


def _python310() -> str | None:
    """The interpreter tools/rasa.sh would use (same search order), or ``None``."""
    home = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [os.environ.get("TSUR_RASA_PYTHON", ""), shutil.which("python3.10") or "",
                  *sorted(glob.glob(f"{home}/versions/3.10.*/bin/python")),
                  *sorted(glob.glob("/root/.pyenv/versions/3.10.*/bin/python"))]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


pytestmark = [
    pytest.mark.skipif(_python310() is None,
                       reason="Rasa 3.6 needs Python 3.10 and none was found "
                              "(python3.10 on PATH, ~/.pyenv/versions/3.10.*, TSUR_RASA_PYTHON)"),
    # The first test pays for the session fixture: setup, training and the server start.
    pytest.mark.timeout(SETUP_TIMEOUT + TRAIN_TIMEOUT + START_TIMEOUT + 60),
]

# Obvious complaints written for this test (none of them is in nlu.yml), one per sector.
OBVIOUS = [
    ("у нас в доме третий день нет воды из крана", "housing"),
    ("мусор не вывозят уже неделю баки переполнены", "waste"),
    ("ребенка не берут в детский сад очередь не двигается", "education"),
    ("автобус 12 маршрута не ходит по расписанию ждем часами", "transport"),
]


def _run(args: list[str], timeout: float, what: str) -> None:
    result = subprocess.run([str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        pytest.fail(f"tools/rasa.sh {' '.join(args)} ({what}) failed "
                    f"with exit code {result.returncode}:\n{tail}", pytrace=False)


def _cache_key() -> str:
    digest = hashlib.sha256()
    for path in (NLU, CONFIG, REQUIREMENTS, SCRIPT):  # the script cuts the texts
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _trained_model() -> Path:
    """The cached test model, trained now if the data, config or Rasa changed."""
    default = Path.home() / ".cache" / "tsur" / "rasa-test-models"
    cache = Path(os.environ.get("TSUR_RASA_CACHE", default)) / _cache_key()
    model = cache / f"{MODEL_NAME}.tar.gz"
    if model.exists():
        return model
    staging = cache.with_name(cache.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    _run(["train", "--config", str(CONFIG), "--out", str(staging), "--name", MODEL_NAME],
         TRAIN_TIMEOUT, "training the test model")
    try:
        staging.replace(cache)  # atomic: a half-trained model is never taken for a cached one
    except OSError:
        if not model.exists():
            raise
        shutil.rmtree(staging, ignore_errors=True)  # another test run cached the same key first
    return model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RasaServer:
    """A ``tools/rasa.sh serve`` process (rasa itself, the script execs it)."""

    def __init__(self, model: Path, log: Path) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = log
        port = self.url.rsplit(":", 1)[1]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(SCRIPT), "serve", "--model", str(model), "--port", port], cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def wait_loaded(self, timeout: float) -> float:
        """Seconds until ``/status`` answers 200 (Rasa answers 409 until a model is loaded)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                self._fail(f"rasa run exited with code {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/status", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.25)
        self.stop()
        self._fail(f"rasa run did not load the model within {timeout:.0f} s")
        raise AssertionError  # unreachable: _fail raises

    def _fail(self, message: str) -> None:
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
        pytest.fail(f"{message}; its log ends:\n{tail}", pytrace=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: rasa and children
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def rasa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    _run(["setup"], SETUP_TIMEOUT, "creating the Python 3.10 venv")
    model = _trained_model()
    server = RasaServer(model, tmp_path_factory.mktemp("rasa") / "rasa-run.log")
    try:
        server.wait_loaded(START_TIMEOUT)
        yield server
    finally:
        server.stop()


async def test_the_server_has_loaded_the_trained_model(rasa_server: RasaServer) -> None:
    status = await RasaClassifier(rasa_server.url).status()
    assert status["model_file"] == f"{MODEL_NAME}.tar.gz"
    assert status["num_active_training_jobs"] == 0


async def test_clear_texts_get_ranked_suggestions_with_known_slugs(
        rasa_server: RasaServer) -> None:
    catalogue = load_catalogue()
    known = {(s.slug, c.slug) for s in catalogue.sectors for c in s.categories}
    classifier = RasaClassifier(rasa_server.url, catalogue=catalogue)
    right = []
    for text, sector in OBVIOUS:
        suggestions = await classifier.classify(text)
        assert 2 <= len(suggestions) <= 5, (text, suggestions)
        assert {(s.sector, s.category) for s in suggestions} <= known
        confidences = [s.confidence for s in suggestions]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences)
        assert sum(confidences) <= 1.0 + 1e-3
        right.append(suggestions[0].sector == sector)
    assert sum(right) >= 3, list(zip(OBVIOUS, right, strict=True))


async def test_a_slash_and_a_long_appeal_are_classified_as_text(rasa_server: RasaServer) -> None:
    classifier = RasaClassifier(rasa_server.url)
    # Unstripped, Rasa would take "/greet" for the intent "greet" and answer nothing of ours.
    assert await classifier.classify("/greet нет воды в доме") != []
    long_appeal = "Здравствуйте. " + "В доме нет воды и никто не отвечает. " * 400
    assert await classifier.classify(long_appeal) != []


def test_evaluate_rasa_prints_the_report_with_its_summary_line(
        rasa_server: RasaServer, tmp_path: Path) -> None:
    data = tmp_path / "appeals.csv"
    data.write_text("text,sector\n" + "".join(f"{t},{s}\n" for t, s in OBVIOUS),
                    encoding="utf-8")
    last = evaluate_rasa(rasa_server.url, data).splitlines()[-1]
    match = re.fullmatch(r"macro_f1=(\d\.\d{3}) accuracy=(\d\.\d{3}) n=4", last)
    assert match, last
    assert float(match.group(2)) >= 0.75


# Last in the module: it stops the session's server.
async def test_a_stopped_server_raises_classifier_unavailable(rasa_server: RasaServer) -> None:
    classifier = RasaClassifier(rasa_server.url, timeout=3)
    assert await classifier.classify(OBVIOUS[0][0])
    rasa_server.stop()
    started = time.monotonic()
    with pytest.raises(ClassifierUnavailable, match="unavailable"):
        await classifier.classify(OBVIOUS[0][0])
    assert time.monotonic() - started < 3.5
