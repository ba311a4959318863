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
- **the open load of each rep it has counted** (open A/B assignments): counted once, then
  moved by this transaction's own changes of assignments as they are made (an assignment
  added to the session, or its state, outcome or rep set: ORM events). Loads only move
  under a team's round-robin lock, which the transaction holds for every team it routes
  into; a lead closed by another transaction meanwhile is seen by the next one (a rep
  looks busier for the rest of the batch, never less busy).
- **the round-robin state of each team it has locked**: the lock is held until the
  commit, so no one else can move it meanwhile. :func:`repository.save_rotation` moves
  the kept state, and the state each moved team ends the transaction with is written
  once, just before the commit (:func:`repository.write_rotations`), instead of once per
  lead.

A savepoint rolled back puts back what was kept when it began; a rollback of the whole
transaction forgets everything. A write of a configuration row through the ORM in the
transaction drops the configuration kept for it.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import LoaderCallableStatus, SessionTransaction, object_session
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from services.routing.domain.model import RoutingConfig
from services.routing.domain.round_robin import Rotation
from services.routing.domain.sla import SlaPolicy
from services.routing.models import (
    AssignmentRow,
    ConfigVersionRow,
    NamedAccountRow,
    NurtureProgramRow,
    RepAbsenceRow,
    RepRow,
    SlaPolicyRow,
    TeamRow,
    TerritoryRow,
    counts_in_load,
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
    # The round-robin state of each team locked, with this transaction's moves; as it is
    # in the database; the teams moved since then (and when, last).
    rotations: dict[str, Rotation] = field(default_factory=dict)
    stored: dict[str, Rotation] = field(default_factory=dict)
    moved_at: dict[str, datetime] = field(default_factory=dict)
    # Open A/B assignments per rep counted so far, with this transaction's changes, flushed
    # or not (kept up to date by the AssignmentRow events below).
    loads: dict[str, int] = field(default_factory=dict)
    # A configuration row was written in this transaction: what it reads of the
    # configuration from then on is its own, uncommitted, and is kept for it alone.
    wrote_config: bool = False
    # What was kept when each savepoint began: put back when it is rolled back.
    savepoints: dict[SessionTransaction, TransactionCache] = field(default_factory=dict)

    def copy(self) -> TransactionCache:
        return replace(
            self,
            rotations=dict(self.rotations),
            stored=dict(self.stored),
            moved_at=dict(self.moved_at),
            loads=dict(self.loads),
            savepoints={},
        )


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
            event.listen(session, "after_transaction_create", _savepoint_begun)
            event.listen(session, "after_soft_rollback", _rolled_back)
            event.listen(session, "before_commit", _committing)
        cache = TransactionCache(transaction)
        session.info[KEY] = cache
    return cache


def config_version(session: Session) -> int | None:
    return session.execute(_CONFIG_VERSION).scalar()


# Read by every transaction that routes (built once: shared.db.clauses.among_parameter).
_CONFIG_VERSION = select(col(ConfigVersionRow.version)).where(col(ConfigVersionRow.id) == 1)


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


def _current(session: Session) -> TransactionCache | None:
    cache: TransactionCache | None = session.info.get(KEY)
    if cache is None or cache.transaction is not session.get_transaction():
        return None
    return cache


def _savepoint_begun(session: Session, transaction: SessionTransaction) -> None:
    cache = _current(session)
    if transaction.nested and cache is not None:
        cache.savepoints[transaction] = cache.copy()


def _rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    cache: TransactionCache | None = session.info.get(KEY)
    if cache is None:
        return
    before = cache.savepoints.get(previous_transaction)
    if before is not None:  # a savepoint: back to what was kept when it began
        before.savepoints = cache.savepoints
        before.wrote_config = before.wrote_config or cache.wrote_config
        session.info[KEY] = before
    else:
        session.info[KEY] = TransactionCache(cache.transaction, wrote_config=cache.wrote_config)


def _committing(session: Session) -> None:
    cache = _current(session)
    if cache is not None and cache.moved_at:
        from services.routing import repository

        repository.write_rotations(session, cache)


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


def _move_load(target: Any, rep_id: Any, by: int) -> None:
    session = object_session(target)
    if session is None or rep_id is None:
        return
    cache = _current(session)  # type: ignore[arg-type]
    if cache is not None and rep_id in cache.loads:
        cache.loads[rep_id] += by


# Loads move when an assignment is added to the session or one of the three attributes a
# load depends on is set, not when the change is flushed: a decision then needs no flush
# of the leads routed before it (a flush per lead, a quarter of the routing bench's
# samples), and the batch's rows are written together at the end. A rep counted later is
# counted after a flush (``repository.kept_loads``), so what was set before is in the
# count, never twice.
_LOAD_ATTRIBUTES = ("state", "outcome", "rep_id")


def _added(session: Any, instance: Any) -> None:
    if isinstance(instance, AssignmentRow) and counts_in_load(instance.state, instance.outcome):
        _move_load(instance, instance.rep_id, +1)


def _load_attribute_set(name: str) -> Any:
    def moved(target: AssignmentRow, value: Any, previous: Any, initiator: Any) -> None:
        if object_session(target) is None:
            return  # not added yet (being built): it counts once it is
        before = {each: getattr(target, each) for each in _LOAD_ATTRIBUTES}
        before[name] = None if previous is LoaderCallableStatus.NO_VALUE else previous
        after = {**before, name: value}
        if counts_in_load(before["state"], before["outcome"]):
            _move_load(target, before["rep_id"], -1)
        if counts_in_load(after["state"], after["outcome"]):
            _move_load(target, after["rep_id"], +1)

    return moved


def _assignment_deleted(mapper: Any, connection: Any, target: AssignmentRow) -> None:
    if counts_in_load(target.state, target.outcome):
        _move_load(target, target.rep_id, -1)


event.listen(OrmSession, "transient_to_pending", _added)
for _name in _LOAD_ATTRIBUTES:
    event.listen(
        getattr(AssignmentRow, _name), "set", _load_attribute_set(_name), active_history=True
    )
event.listen(AssignmentRow, "after_delete", _assignment_deleted)
