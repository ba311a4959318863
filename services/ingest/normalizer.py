"""Normalizing in a process of its own, beside the import worker.

A CSV import is bound by one process: its worker thread and the outbox relay share one
interpreter lock, and normalizing the rows is about a quarter of what the worker does
with it. The worker hands each next chunk's rows to this process while it writes the
chunk before (:class:`services.ingest.imports.ImportFiles`), so the two run on two cores.

The process is spawned (a fresh interpreter, not a fork of one with threads), once the
worker has an import of more than one chunk, and stopped when it has none left. Until it
is up, and should it die, the worker normalizes in its own thread: nothing waits for it.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from services.ingest.domain.normalize import (
    Issue,
    Normalization,
    NormalizationConfig,
    NormalizedLead,
    RawValue,
    normalize,
)
from shared.contracts import Consent, Contract, Utm
from shared.observability.logs import get_logger

log = get_logger(__name__)

# A row as normalize takes it: its fields and its other columns (attributes).
RowValues = tuple[Mapping[str, RawValue], Mapping[str, RawValue]]

_config: NormalizationConfig | None = None  # in the normalizer process


def _configure(config: NormalizationConfig) -> None:
    global _config  # noqa: PLW0603 - the process's one configuration, set as it starts
    _config = config
    threading.Thread(target=_end_with, args=(os.getppid(),), daemon=True).start()


def _end_with(parent: int) -> None:
    """End this process when its parent has ended. A parent killed outright (kill -9, out
    of memory) does not stop it, and the pool's pipe does not tell it either (it holds both
    ends): it would wait for rows for ever. Orphaned, it gets another parent."""
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(0)


_PARENT_CHECK_SECONDS = 0.5


def _started() -> bool:
    return True


def _normalize_rows(rows: Sequence[RowValues]) -> list[Packed]:
    assert _config is not None, "the normalizer process was not configured"
    return [pack(normalize(fields, attributes, config=_config)) for fields, attributes in rows]


# A normalization as it crosses between the processes: the lead's values in the order of
# its fields (its UTM and consent as their values, or None when empty) and the issues'.
# Pickled as objects, the dataclasses and the pydantic models cost the worker's process
# about 27 µs a row to take back (of the ~95 normalizing costs); as plain tuples, 16.
Packed = tuple[tuple[object, ...] | None, tuple[tuple[str, str, str], ...]]
_LEAD_FIELDS = tuple(field.name for field in dataclasses.fields(NormalizedLead))
_NO_UTM, _NO_CONSENT = Utm(), Consent()  # immutable: shared by every lead without any


def pack(result: Normalization) -> Packed:
    issues = tuple((issue.field, issue.reason, issue.severity) for issue in result.issues)
    lead = result.lead
    if lead is None:
        return None, issues
    values = [getattr(lead, name) for name in _LEAD_FIELDS]
    values[_UTM] = None if lead.utm == _NO_UTM else tuple(lead.utm.__dict__.values())
    values[_CONSENT] = (
        None if lead.consent == _NO_CONSENT else tuple(lead.consent.__dict__.values())
    )
    return tuple(values), issues


def unpack(packed: Packed) -> Normalization:
    values, issues = packed
    lead = None
    if values is not None:
        state = dict(zip(_LEAD_FIELDS, values, strict=True))
        state["utm"] = _model(Utm, state["utm"], _NO_UTM)
        state["consent"] = _model(Consent, state["consent"], _NO_CONSENT)
        lead = object.__new__(NormalizedLead)
        lead.__dict__.update(state)  # what its __init__ sets; frozen, it has no __setattr__
    return Normalization(lead, tuple(Issue(*issue) for issue in issues))  # type: ignore[arg-type]


def _model(model: type[Contract], values: object, empty: Contract) -> Contract:
    if values is None:
        return empty
    assert isinstance(values, tuple)
    return model.model_construct(**dict(zip(model.model_fields, values, strict=True)))


_UTM, _CONSENT = _LEAD_FIELDS.index("utm"), _LEAD_FIELDS.index("consent")


class NormalizerProcess:
    """A second process that normalizes rows handed to it with one configuration."""

    def __init__(self, config: NormalizationConfig) -> None:
        self.config = config
        self._pool: ProcessPoolExecutor | None = None
        self._started: Future[bool] | None = None
        self.started = 0  # processes started: one, unless one died

    def ready(self) -> bool:
        """Whether the process is up to take rows at once; starts it when there is none
        (and answers False: a spawned interpreter takes about a second to start)."""
        if self._pool is None or self._started is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_configure,
                initargs=(self.config,),
            )
            self._started = self._pool.submit(_started)
            self.started += 1
            return False
        if not self._started.done():
            return False
        if self._started.exception() is not None:
            self._forget("did not start", self._started.exception())
            return False
        return True

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Start the process and wait until it is up."""
        self.ready()
        assert self._started is not None
        self._started.result(timeout=timeout)

    def submit(self, rows: Sequence[RowValues]) -> Future[list[Packed]] | None:
        """The rows' normalizations to come; None when the process is not up."""
        if not self.ready():
            return None
        assert self._pool is not None
        try:
            return self._pool.submit(_normalize_rows, list(rows))
        except BrokenProcessPool as error:
            self._forget("died", error)
            return None

    def result(self, future: Future[list[Packed]]) -> list[Normalization] | None:
        """What ``future`` normalized; None when the process died or was stopped before it
        answered (the caller normalizes the rows itself)."""
        try:
            return [unpack(each) for each in future.result()]
        except (BrokenProcessPool, CancelledError) as error:
            self._forget("did not answer", error)
            return None

    @property
    def pid(self) -> int | None:
        """The process's id, once it runs."""
        processes = getattr(self._pool, "_processes", None) or {}
        return next(iter(processes), None)

    def close(self) -> None:
        """Stop the process (it finishes the rows it has, which nobody waits for)."""
        pool, self._pool, self._started = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _forget(self, what: str, error: BaseException | None) -> None:
        log.warning(f"the normalizer process {what}: normalizing in the worker", error=repr(error))
        self.close()
