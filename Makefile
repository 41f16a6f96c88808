# tsur — `make run` starts the whole system on SQLite, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCALES := dialogue/locales

.PHONY: install run migrate test lint i18n-extract i18n-compile system-deps clean \
	rasa rasa-setup rasa-train
RASA_MODEL := var/rasa/models/tsur-nlu.tar.gz
RASA_PORT ?= 5005

install: $(STAMP) i18n-compile

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

i18n-compile: $(STAMP)
	$(BIN)/pybabel compile -d $(LOCALES) -D messages --statistics
	$(BIN)/pybabel compile -d portal/locales -D portal --statistics

i18n-extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o $(LOCALES)/messages.pot dialogue bots notifications
	$(BIN)/pybabel update -i $(LOCALES)/messages.pot -d $(LOCALES) -D messages
	$(BIN)/pybabel extract -F portal/babel.cfg -o portal/locales/portal.pot portal
	$(BIN)/pybabel update -i portal/locales/portal.pot -d portal/locales -D portal

run: install
	$(BIN)/tsur run

migrate: install
	$(BIN)/tsur migrate

# The optional Rasa NLU backend (Python 3.10 venv in rasa/.venv): set up, train when the
# data or the pipeline changed, serve on 127.0.0.1:$(RASA_PORT). Then run tsur with
# TSUR_NLU=rasa TSUR_RASA_URL=http://127.0.0.1:$(RASA_PORT).
rasa: $(RASA_MODEL)
	tools/rasa.sh serve --model $(RASA_MODEL) --port $(RASA_PORT)

rasa-setup:
	tools/rasa.sh setup

rasa-train:
	tools/rasa.sh setup
	tools/rasa.sh train --config rasa/config.yml --out $(dir $(RASA_MODEL))

$(RASA_MODEL): rasa/requirements.txt rasa/config.yml dialogue/classifiers/data/nlu.yml
	tools/rasa.sh setup
	tools/rasa.sh train --config rasa/config.yml --out $(dir $(RASA_MODEL))

# What the tests need from the system (PostgreSQL); installs with apt when missing.
system-deps:
	@tools/system-deps.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install system-deps lint
	TSUR_REQUIRE_POSTGRES=1 TSUR_REQUIRE_REDIS=1 TSUR_REQUIRE_BROWSER=1 $(BIN)/pytest -q --durations=30

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
