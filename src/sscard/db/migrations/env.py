"""Alembic environment: runs on the connection or URL that sscard.db.migrate passes."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

from alembic import context
from sqlalchemy import Connection

from sscard.db.engine import make_engine
from sscard.db.models import Base

config = context.config
target_metadata = Base.metadata

# The audit trail's month partitions on PostgreSQL (migration 0015): made at run time,
# described by their partitioned table.
PARTITION = re.compile(r"audit_records_(default|\d{4}_\d{2})")


def include_name(name: str | None, type_: str, parent_names: MutableMapping[Any, Any]) -> bool:
    return not (type_ == "table" and name is not None and PARTITION.fullmatch(name))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
