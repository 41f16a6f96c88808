# tsur: the whole system in one container (SQLite by default; set TSUR_DATABASE_URL for PostgreSQL).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TSUR_DATA_DIR=/data TSUR_HOST=0.0.0.0 TSUR_PORT=8080
WORKDIR /app
COPY pyproject.toml README.md babel.cfg ./
COPY bots bots
COPY dialogue dialogue
COPY domain domain
COPY notifications notifications
COPY config config
RUN pip install --no-cache-dir . \
 && pybabel compile -d "$(python -c 'import dialogue, os; print(os.path.dirname(dialogue.__file__))')/locales" -D messages
VOLUME /data
EXPOSE 8080
CMD ["tsur", "run"]
