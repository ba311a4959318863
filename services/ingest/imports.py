"""CSV imports: the file is stored whole when accepted, then processed in chunks, each its
own transaction, so an import survives a restart and is resumed where it stopped.

``POST /v1/imports`` accepts; the ``process_imports`` worker works; ``GET /v1/imports/{id}``
shows progress and the report. ``leadflow import FILE`` does the same from the shell.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from services.ingest import repository
from services.ingest.auth import ApiKeyRoute
from services.ingest.capture import Rejected, Suppressed, capture_many
from services.ingest.domain.csvfile import (
    Row,
    UnreadableFile,
    count_rows,
    decode,
    detect_delimiter,
    read,
)
from services.ingest.domain.erasure import erase_rows, is_erased_row
from services.ingest.domain.normalize import Issue, Normalization
from services.ingest.domain.submission import Submission
from services.ingest.models import Import, ImportIssue
from services.ingest.normalizer import NormalizerProcess, Packed
from services.ingest.settings import IngestSettings
from shared.db.bulk import insert_rows
from shared.db.rows import table_of
from shared.http import DbSession, ReadSession, problem
from shared.ids import new_uuid
from shared.observability.logs import get_logger
from shared.outbox import Outbox
from shared.service import ServiceRuntime
from shared.stopping import wake_or_stop

log = get_logger(__name__)
SLUG = re.compile(r"^[a-z][a-z0-9_]*$")


def create_import(
    session: Session,
    *,
    data: bytes,
    filename: str | None,
    source: str,
    campaign: str | None,
    touchpoint_type: str,
) -> Import:
    """Store the file and what we know of it; raises UnreadableFile for a file we cannot
    read at all (no header, no email or phone column)."""
    text, encoding = decode(data)
    delimiter = detect_delimiter(text)
    total = count_rows(text, delimiter)
    row = Import(
        id=new_uuid(),
        filename=filename,
        source=source,
        campaign=campaign,
        touchpoint_type=touchpoint_type,
        content=text,
        encoding=encoding,
        delimiter=delimiter,
        status="pending",
        total_rows=total,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    return row


@dataclass
class _Ahead:
    """The rows of a file's next chunk, read before it is taken, and their normalization
    under way in the normalizer's process (of the rows not erased, in order)."""

    rows: list[Row]
    normalized: Future[list[Packed]]


@dataclass
class _OpenFile:
    """An import's file as parsed, the rows from ``position`` on still to come."""

    import_id: uuid.UUID
    content_version: int
    position: int  # data rows taken so far: the job's processed_rows when it is right
    chunk_rows: int
    rows: Iterator[Row]
    ahead: _Ahead | None = None  # the next chunk, read from ``rows`` already


class ImportFiles:
    """The file of the import being processed, parsed once for all its chunks.

    The worker keeps one between the chunks of an import (each its own transaction): a
    chunk reads on where the previous one stopped, instead of loading the file (megabytes)
    and parsing it from the top again. It is used only while the database agrees, which a
    chunk checks without loading the file: the import's committed ``processed_rows`` is
    where it stopped, and its ``content_version`` is the one it was parsed at (an erasure
    that blanked rows since changed it). Otherwise (a restart, a chunk that failed, an
    erasure, another worker) the file is loaded and parsed again from the committed
    position.

    With a ``normalizer`` (:mod:`services.ingest.normalizer`), taking a chunk's rows reads
    the next chunk's too and hands them to that process, to be normalized while the worker
    writes these: the file kept holds them, and goes with them when it is not right.
    """

    def __init__(self, normalizer: NormalizerProcess | None = None) -> None:
        self._open: _OpenFile | None = None
        self.normalizer = normalizer
        self.parsed = 0  # files loaded and parsed: once per import, unless they changed
        self.normalized_ahead = 0  # chunks the normalizer's process normalized

    @classmethod
    def for_worker(cls, settings: IngestSettings) -> ImportFiles:
        """A worker's: with a normalizer process, unless the settings keep it all in the
        worker."""
        config = settings.normalization()
        return cls(NormalizerProcess(config) if settings.import_normalizer else None)

    def close(self) -> None:
        """Stop the normalizer's process, if there is one (it starts again when needed)."""
        if self.normalizer is not None:
            self.normalizer.close()

    def open(self, job: Import, *, chunk_rows: int) -> _OpenFile:
        """The file of ``job``, its next row the first not processed. The caller owns it
        until it gives it back (:meth:`keep`): a chunk that fails midway leaves nothing."""
        kept, self._open = self._open, None
        if (
            kept is not None
            and kept.import_id == job.id
            and kept.content_version == job.content_version
            and kept.position == job.processed_rows
            and kept.chunk_rows == chunk_rows
        ):
            return kept
        if kept is not None and kept.ahead is not None:
            kept.ahead.normalized.cancel()
        self.parsed += 1
        _, rows = read(job.content, job.delimiter or ",", start=job.processed_rows)
        return _OpenFile(job.id, job.content_version, job.processed_rows, chunk_rows, rows)

    def take(self, file: _OpenFile) -> tuple[list[Row], list[Normalization] | None]:
        """The next chunk's rows, and the normalization of those not erased when the
        normalizer's process made it (None: the caller normalizes them). With a normalizer
        that is up, the rows of the chunk after go to it at once, to be normalized while
        the caller writes these."""
        ahead, file.ahead = file.ahead, None
        if ahead is None:
            rows, normalized = list(itertools.islice(file.rows, file.chunk_rows)), None
        else:
            assert self.normalizer is not None  # it made ahead
            rows, normalized = ahead.rows, self.normalizer.result(ahead.normalized)
            self.normalized_ahead += normalized is not None
        if self.normalizer is not None and self.normalizer.ready():
            file.ahead = _read_ahead(file, self.normalizer)
        return rows, normalized

    def keep(self, file: _OpenFile, job: Import) -> None:
        """For the next chunk: ``job`` as this chunk leaves it (if it commits)."""
        file.position, file.content_version = job.processed_rows, job.content_version
        self._open = file


def _read_ahead(file: _OpenFile, normalizer: NormalizerProcess) -> _Ahead | None:
    """The file's next chunk, handed to the normalizer's process (None at the end of the
    file, or when the process is gone: then the rows are put back)."""
    rows = list(itertools.islice(file.rows, file.chunk_rows))
    if not rows:
        return None
    future = normalizer.submit(
        [(row.fields, row.attributes) for row in rows if not is_erased_row(row)]
    )
    if future is None:
        file.rows = itertools.chain(rows, file.rows)
        return None
    return _Ahead(rows, future)


def process_chunk(
    session: Session,
    outbox: Outbox,
    *,
    import_id: uuid.UUID,
    settings: IngestSettings,
    files: ImportFiles | None = None,
) -> bool:
    """Capture the next chunk of rows of an import; answer whether this worker is done with
    it: the import is finished, or another worker is taking a chunk of it (its transaction
    holds the import's row; it goes on with the next chunk, and this worker with another
    import: side by side, two workers would take the same rows twice).

    The rows are captured together (:func:`capture_many`), each as if on its own: a bad
    row is reported and never aborts the file. A row of
    a person erased on request is refused and blanked in the stored file at once, and the
    file is dropped when the import is finished: only the report stays. ``files``: the
    worker's :class:`ImportFiles`, kept from chunk to chunk (without, the file is loaded and
    parsed for this chunk alone).
    """
    # Before the job's row is locked: an erasure under way (which blanks rows of unfinished
    # imports) goes first, and one that comes waits for this chunk.
    repository.share_erasure_lock(session=session)
    job = repository.claim_import(session=session, import_id=import_id)
    if job is None or job.status in ("done", "failed"):
        return True
    job.status = "running"
    files = files if files is not None else ImportFiles()
    file = files.open(job, chunk_rows=settings.import_chunk_rows)
    rows, normalized = files.take(file)
    taken: list[tuple[int, Submission | None]] = []  # None: an erased row
    for row in rows:
        if is_erased_row(row):
            taken.append((row.number, None))
        else:
            submission = Submission(
                fields=row.fields,
                attributes=row.attributes,
                door="import",
                source=job.source,
                campaign=job.campaign,
                touchpoint_type=job.touchpoint_type,
                reference=f"{job.id}#{row.number}",
            )
            taken.append((row.number, submission))
    handled = len(taken)
    outcomes = iter(
        capture_many(
            session,
            outbox,
            submissions=[each for _, each in taken if each is not None],
            settings=settings,
            normalized=normalized,
        )
    )
    suppressed: set[int] = set()
    issues: list[dict[str, object]] = []  # the chunk's report, inserted in one statement
    for number, each in taken:
        if each is None:
            job.rejected += 1
            issues += _issues(job, number, (ERASED_ROW,), severity="error")
            continue
        outcome = next(outcomes)
        if isinstance(outcome, Rejected):
            job.rejected += 1
            issues += _issues(job, number, outcome.issues, severity="error")
            if isinstance(outcome, Suppressed):
                suppressed.add(number)
            continue
        if outcome.change == "created":
            job.created += 1
        else:
            job.merged += 1
        issues += _issues(job, number, outcome.warnings, severity="warning")
        job.warnings += len(outcome.warnings)
    insert_rows(session, _ISSUES, issues)
    job.processed_rows += handled
    # Rows behind the file's position: what is still to come of it is the same.
    blank_rows(job, suppressed)
    finished = handled < settings.import_chunk_rows or job.processed_rows >= (job.total_rows or 0)
    if finished:
        log.info("import finished", import_id=str(job.id))
        job.status = "done"
        job.finished_at = datetime.now(UTC)
        job.content = ""  # the file is not needed any more: keep no personal data for nothing
    else:
        files.keep(file, job)
    return finished


def blank_rows(job: Import, numbers: Collection[int]) -> None:
    """Blank these data rows in the stored file of an import (:func:`erase_rows`), and say
    so by its ``content_version``: a worker that holds the file parsed loads it again."""
    if numbers:
        job.content = erase_rows(job.content, job.delimiter or ",", numbers)
        job.content_version += 1


_ISSUES = table_of(ImportIssue)
ERASED_ROW = Issue("row", "erased on request (right to erasure) before it was imported")


def _issues(
    job: Import, row: int, issues: Iterable[Issue], *, severity: str
) -> list[dict[str, object]]:
    """Rows of ``import_issues`` (rows refused: error; values kept raw: warning)."""
    return [
        {
            "import_id": job.id,
            "row": row,
            "field": issue.field,
            "reason": issue.reason[:500],
            "severity": severity,
        }
        for issue in issues
    ]


async def process_imports(runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
    """The worker: pending and interrupted imports, chunk by chunk, until stopped."""
    settings = runtime.settings
    assert isinstance(settings, IngestSettings)
    runtime.state["imports_wake"] = wake = asyncio.Event()

    def pending() -> list[uuid.UUID]:
        with runtime.db.read() as session:
            return list(repository.pending_imports(session=session))

    runtime.state["import_files"] = files = ImportFiles.for_worker(settings)

    def chunk(import_id: uuid.UUID) -> bool:
        with runtime.db.transaction() as session:
            return process_chunk(
                session, runtime.outbox, import_id=import_id, settings=settings, files=files
            )

    try:
        while not stopping.is_set():
            wake.clear()
            for import_id in await asyncio.to_thread(pending):
                while not stopping.is_set():
                    finished = await asyncio.to_thread(chunk, import_id)
                    runtime.relay.notify()
                    if finished:
                        break
            files.close()  # no import left: no process kept for nothing
            if stopping.is_set():
                return
            # Until an import is posted; 5 s at most (another replica's, or one interrupted).
            await wake_or_stop(wake, stopping, 5.0)
    finally:
        files.close()


class ImportAccepted(BaseModel):
    import_id: uuid.UUID
    status: str
    total_rows: int | None
    encoding: str | None
    delimiter: str | None


class IssueOut(BaseModel):
    row: int
    field: str
    reason: str
    severity: Literal["error", "warning"]


class ImportReport(ImportAccepted):
    filename: str | None
    source: str
    campaign: str | None
    processed_rows: int
    created: int
    merged: int
    rejected: int
    warnings: int
    created_at: datetime
    finished_at: datetime | None
    issues: list[IssueOut] = Field(description="Refused rows and values kept raw, by row")


router = APIRouter(route_class=ApiKeyRoute, tags=["imports"])


@router.post(
    "/v1/imports",
    status_code=202,
    response_model=ImportAccepted,
    summary="Import a CSV file (multipart field 'file', or the CSV as the body)",
    responses={401: {}, 422: {}},
)
async def post_import(
    request: Request,
    session: DbSession,
    source: Annotated[str, Query(description="directory, purchased_list, event ...")] = "import",
    campaign: Annotated[str | None, Query()] = None,
    touchpoint_type: Annotated[str, Query(pattern=SLUG.pattern)] = "list_import",
) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    filename = None
    if content_type == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return problem(422, "body.file", "a file field named 'file' is required")
        data = await upload.read()
        filename = upload.filename
        for name in ("source", "campaign", "touchpoint_type"):
            value = form.get(name)
            if isinstance(value, str) and value:
                if name == "source":
                    source = value
                elif name == "campaign":
                    campaign = value
                elif SLUG.match(value):
                    touchpoint_type = value
    else:
        data = await request.body()
    if not data.strip():
        return problem(422, "body.file", "the file is empty")

    def store() -> Response:
        try:
            job = create_import(
                session,
                data=data,
                filename=filename,
                source=source,
                campaign=campaign,
                touchpoint_type=touchpoint_type,
            )
        except UnreadableFile as error:
            return problem(422, "body.file", str(error))
        return JSONResponse(
            ImportAccepted(
                import_id=job.id,
                status=job.status,
                total_rows=job.total_rows,
                encoding=job.encoding,
                delimiter=job.delimiter,
            ).model_dump(mode="json"),
            status_code=202,
            headers={"Location": f"/v1/imports/{job.id}"},
        )

    response = await asyncio.to_thread(store)
    wake = request.app.state.runtime.state.get("imports_wake")
    if wake is not None and response.status_code == 202:
        # Woken after this request's commit, which happens before the answer goes out.
        asyncio.get_running_loop().call_later(0.05, wake.set)
    return response


@router.get("/v1/imports/{import_id}", response_model=ImportReport, summary="Progress and report")
def get_import(
    import_id: uuid.UUID,
    session: ReadSession,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 1_000,
) -> Response:
    job = repository.import_(session=session, import_id=import_id)
    if job is None:
        return problem(404, "path.import_id", f"no import {import_id}")
    return JSONResponse(report(session, job, limit=limit).model_dump(mode="json"))


def report(session: Session, job: Import, *, limit: int) -> ImportReport:
    issues = (
        repository.import_issues(session=session, import_id=job.id, limit=limit) if limit else []
    )
    return ImportReport(
        import_id=job.id,
        status=job.status,
        total_rows=job.total_rows,
        encoding=job.encoding,
        delimiter=job.delimiter,
        filename=job.filename,
        source=job.source,
        campaign=job.campaign,
        processed_rows=job.processed_rows,
        created=job.created,
        merged=job.merged,
        rejected=job.rejected,
        warnings=job.warnings,
        created_at=job.created_at,
        finished_at=job.finished_at,
        issues=[
            IssueOut(row=i.row, field=i.field, reason=i.reason, severity=i.severity) for i in issues
        ],
    )
