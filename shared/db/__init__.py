"""Database access shared by the services: engines, the transaction scope, runtime tables."""

from shared.db.database import Database, normalize_url
from shared.db.runtime_tables import RuntimeTables

__all__ = ["Database", "RuntimeTables", "normalize_url"]
