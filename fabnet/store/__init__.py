"""Persistence: SQLAlchemy tables and the ``Store`` repository the hub and web layers call.

SQLite by default (``./var/fabnet.db``, WAL, foreign keys, ``BEGIN IMMEDIATE`` writers),
any SQLAlchemy URL otherwise (PostgreSQL: task rows are locked ``FOR UPDATE``, and
``SKIP LOCKED`` where several dispatcher processes take work from one queue).
"""

from fabnet.store.repository import Store

__all__ = ["Store"]
