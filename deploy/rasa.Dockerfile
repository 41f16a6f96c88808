# The optional Rasa NLU server (docker compose --profile rasa): Rasa 3.6 on Python 3.10,
# from the complete lock in rasa/requirements.txt, trained at build time by the same
# tools/rasa.sh as `make rasa` (examples cut to 256 words, the shipped nlu.yml).
# tsur reaches it at TSUR_RASA_URL=http://rasa:5005 with TSUR_NLU=rasa, and falls back to
# its keyword classifier while it is down.
FROM python:3.10-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 RASA_TELEMETRY_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 SQLALCHEMY_SILENCE_UBER_WARNING=1 \
    PYTHONWARNINGS=ignore::DeprecationWarning \
    TSUR_RASA_PYTHON=/usr/local/bin/python3.10 TSUR_RASA_VENV=/opt/rasa
WORKDIR /app
COPY rasa/requirements.txt rasa/requirements.txt
COPY tools/rasa.sh tools/rasa.sh
RUN tools/rasa.sh setup
COPY rasa/config.yml rasa/config.yml
COPY dialogue/classifiers/data/nlu.yml dialogue/classifiers/data/nlu.yml
RUN tools/rasa.sh train --config rasa/config.yml --out /models
WORKDIR /models
EXPOSE 5005
# not tools/rasa.sh serve: that one listens on 127.0.0.1 only, unreachable from tsur here
CMD ["/opt/rasa/bin/rasa", "run", "--enable-api", "-m", "/models/tsur-nlu.tar.gz", \
     "-p", "5005", "-i", "0.0.0.0"]
