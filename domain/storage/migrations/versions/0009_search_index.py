"""A trigram index for the register's full-text search.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27

The register searches the complaint's text, number and address for a substring
(``domain/storage/queries.py``). Without an index a term found in few complaints reads
every row. This adds an index that narrows the search to candidate rows; the query keeps
its exact condition on top, so the results are those of the scan.

* SQLite: ``complaints_fts``, an FTS5 table with the ``trigram`` tokenizer (case folded)
  over the complaints' own rows (external content, ``content_rowid = id``), kept in step
  by three triggers on ``complaints`` (insert; delete; update of text, number or
  address) and back-filled here by FTS5's ``rebuild``. A later migration that recreates
  ``complaints`` in batch mode drops the triggers with the old table: it must create them
  again (``TRIGGERS`` below).
* PostgreSQL: a ``pg_trgm`` GIN index on ``tsur_search_fold(text || number || address)``.
  Under the C locale (which the server may have) pg_trgm takes only ASCII letters and
  digits into trigrams, so a Cyrillic term would use no index: the function maps each
  Cyrillic letter, either case, to one ASCII letter or digit (``translate``), position for
  position, so a substring of a column is a substring of the folded text. Letters that
  share an ASCII character only cost selectivity, not results.

Three covering indexes, so that the portal's pages read no table rows:
``ix_complaints_created_sector`` (the reports page's top categories of a period),
``ix_complaints_places`` (what its repeat detection reads of a period's complaints) and
``ix_complaints_board`` (the deadline board's open complaints by deadline, with their
agency and municipality).

Frozen: the mapping is copied in ``domain/storage/queries.py`` (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
ASCII = "abvgde0jzi1klmnoprstufhc2w34y567q"
FOLD_FROM = CYRILLIC + CYRILLIC.upper()
FOLD_TO = ASCII + ASCII

_COLUMNS = "rowid, text, number, address"
_NEW = "new.id, new.text, new.number, new.address"
_OLD = "'delete', old.id, old.text, old.number, old.address"
TRIGGERS = {
    "complaints_fts_insert": f"AFTER INSERT ON complaints BEGIN"
                             f" INSERT INTO complaints_fts ({_COLUMNS}) VALUES ({_NEW}); END",
    "complaints_fts_delete": f"AFTER DELETE ON complaints BEGIN"
                             f" INSERT INTO complaints_fts (complaints_fts, {_COLUMNS})"
                             f" VALUES ({_OLD}); END",
    "complaints_fts_update": f"AFTER UPDATE OF text, number, address ON complaints BEGIN"
                             f" INSERT INTO complaints_fts (complaints_fts, {_COLUMNS})"
                             f" VALUES ({_OLD});"
                             f" INSERT INTO complaints_fts ({_COLUMNS}) VALUES ({_NEW}); END",
}
PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION tsur_search_fold(value text) RETURNS text"
    f" LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT translate(value, '{FOLD_FROM}',"
    f" '{FOLD_TO}') $$")
PG_KEY = ("tsur_search_fold(coalesce(text, '') || chr(10) || coalesce(number, '')"
          " || chr(10) || coalesce(address, ''))")


REPORT_INDEXES = {
    "ix_complaints_created_sector": ["created_at", "sector", "category"],
    "ix_complaints_board": ["status", "resolution_due", "agency", "municipality"],
    "ix_complaints_places": ["created_at", "status", "citizen_id", "sector", "category",
                             "municipality", "latitude", "longitude", "number", "address",
                             "id"],
}


def upgrade() -> None:
    for name, columns in REPORT_INDEXES.items():
        op.create_index(name, "complaints", columns)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(PG_FUNCTION)
        op.execute(f"CREATE INDEX ix_complaints_search ON complaints USING gin"
                   f" (({PG_KEY}) gin_trgm_ops)")
        return
    op.execute("CREATE VIRTUAL TABLE complaints_fts USING fts5(text, number, address,"
               " content='complaints', content_rowid='id', tokenize='trigram')")
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute("INSERT INTO complaints_fts (complaints_fts) VALUES ('rebuild')")


def downgrade() -> None:
    for name in REPORT_INDEXES:
        op.drop_index(name, "complaints")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_complaints_search")
        op.execute("DROP FUNCTION IF EXISTS tsur_search_fold(text)")
        return  # pg_trgm stays: other objects may use it
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS complaints_fts")
