"""Alembic environment of tsur. A package so that a non-editable install ships it."""
