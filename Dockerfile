# tsur: the whole system in one container (SQLite by default; set TSUR_DATABASE_URL for PostgreSQL).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TSUR_DATA_DIR=/data TSUR_HOST=0.0.0.0 TSUR_PORT=8080
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bots bots
COPY dialogue dialogue
COPY domain domain
COPY notifications notifications
COPY config config
COPY portal portal
RUN pip install --no-cache-dir . \
 && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && pybabel compile -d "$site/dialogue/locales" -D messages \
 && pybabel compile -d "$site/portal/locales" -D portal
VOLUME /data
EXPOSE 8080
CMD ["tsur", "run"]
