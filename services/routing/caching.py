"""What routing reads once per transaction instead of once per lead.

A consumer batch is one transaction routing hundreds of leads. Three things they all need
are read once in it and then kept in the session (``session.info``) until it ends:

- **the configuration** (teams, territories, reps and their absences, every named
  account, nurture programs) and **the SLA policy**. A transaction reads them when it
  first needs them; a change committed after that is seen by the next transaction. A
  consumer batch's records were all read from Kafka before its transaction began, so a
  lead published after a change was committed is always routed under that change.
  Across transactions the configuration is kept as long as the ``config_version`` row is
  unchanged: database triggers bump it on every write to a configuration table (API,
  CSV, a script or SQL by hand: migration ``routing_0005``), so a transaction re-reads
  the configuration only after it changed, at the cost of one primary-key read.
- **the round-robin state of each team it has locked**: the lock is held until the
  commit, so no one else can move it meanwhile, and :func:`repository.save_rotation`
  keeps the kept copy in step with what it writes.

A rollback (a savepoint's too) drops everything kept for the transaction, and so does a
write of a configuration row through the ORM in the same transaction.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import SessionTransaction, object_session
from sqlmodel import Session, col

from services.routing.domain.model import RoutingConfig
from services.routing.domain.round_robin import Rotation
from services.routing.domain.sla import SlaPolicy
from services.routing.models import (
    ConfigVersionRow,
    NamedAccountRow,
    NurtureProgramRow,
    RepAbsenceRow,
    RepRow,
    SlaPolicyRow,
    TeamRow,
    TerritoryRow,
)

KEY = "routing.transaction_cache"
CONFIG_ROWS: tuple[type[Any], ...] = (
    TeamRow,
    TerritoryRow,
    RepRow,
    RepAbsenceRow,
    NamedAccountRow,
    NurtureProgramRow,
    SlaPolicyRow,
)


@dataclass
class TransactionCache:
    transaction: SessionTransaction | None
    config: RoutingConfig | None = None
    policy: SlaPolicy | None = None
    rotations: dict[str, Rotation] = field(default_factory=dict)
    # A configuration row was written in this transaction: what it reads of the
    # configuration from then on is its own, uncommitted, and is kept for it alone.
    wrote_config: bool = False


@dataclass(frozen=True)
class Snapshot:
    """The configuration and policy as read when ``config_version`` was ``version``."""

    version: int
    config: RoutingConfig
    policy: SlaPolicy


_snapshots: weakref.WeakKeyDictionary[Engine, Snapshot] = weakref.WeakKeyDictionary()
_snapshots_lock = threading.Lock()


def of(session: Session) -> TransactionCache:
    """What this session's current transaction has kept (empty when it starts)."""
    transaction = session.get_transaction()
    cache: TransactionCache | None = session.info.get(KEY)
    if cache is None or cache.transaction is not transaction:
        if KEY not in session.info:
            event.listen(session, "after_soft_rollback", _forget)
        cache = TransactionCache(transaction)
        session.info[KEY] = cache
    return cache


def config_version(session: Session) -> int | None:
    return session.execute(
        select(col(ConfigVersionRow.version)).where(col(ConfigVersionRow.id) == 1)
    ).scalar()


def kept(engine: Engine) -> Snapshot | None:
    return _snapshots.get(engine)


def keep(engine: Engine, kept: Snapshot) -> None:
    with _snapshots_lock:
        current = _snapshots.get(engine)
        if current is None or current.version <= kept.version:
            _snapshots[engine] = kept


def forget_snapshots() -> None:
    """Drop every configuration kept across transactions (tests)."""
    with _snapshots_lock:
        _snapshots.clear()


def _forget(session: Session, previous_transaction: SessionTransaction) -> None:
    cache: TransactionCache | None = session.info.get(KEY)
    if cache is not None:
        session.info[KEY] = TransactionCache(cache.transaction, wrote_config=cache.wrote_config)


def _config_written(mapper: Any, connection: Any, target: Any) -> None:
    session = object_session(target)
    if session is not None:
        cache = of(session)  # type: ignore[arg-type]
        cache.config = None
        cache.policy = None
        cache.wrote_config = True


for _row in CONFIG_ROWS:
    for _name in ("after_insert", "after_update", "after_delete"):
        event.listen(_row, _name, _config_written)
