"""A throwaway PostgreSQL database per test, on the server at 127.0.0.1:5432 (trust auth).

One place for what several test packages need: a new database named ``fabnet_t_<uuid>``, its
URL, and afterwards the database dropped with its connections (processes a test SIGKILLed may
leave some behind).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
PG_HOWTO = (
    "PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, trust auth). Start it: "
    "`sudo apt-get install postgresql && sudo service postgresql start`"
)


def fresh_pg_database() -> Iterator[str]:
    """Yield the URL of a new, empty database; drop it after the caller is done."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"fabnet_t_{uuid.uuid4().hex}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"{PG_HOWTO}\n{exc}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
