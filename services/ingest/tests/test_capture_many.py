"""A batch captured together (``capture_many``: the batch endpoint, CSV imports) has the
outcome of the same submissions captured one after the other, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from services.ingest import capture as capturing
from services.ingest import repository
from services.ingest.api import LeadIn
from services.ingest.capture import Captured, Rejected, capture, capture_many
from services.ingest.domain.submission import Submission
from services.ingest.erasure import erase_person
from services.ingest.models import TABLES, Account, Lead, Suppression, Touchpoint
from services.ingest.service import DEFINITION
from services.ingest.settings import IngestSettings
from services.ingest.tests.test_imports import OUTBOX, settings
from shared.db import Database
from shared.db.rows import new_row
from shared.testing.pytest_plugin import DatabaseFactory
from shared.testing.statements import statements_sent

EXISTING: list[dict[str, Any]] = [
    {"email": "ada@acme.com", "company": "ACME", "phone": "+14155550100"},
    {"phone": "+14155550111", "first_name": "Phoebe"},
    {"email": "gina@gmail.com", "company": "Globex Corp."},
    {"email": "erased@acme.com", "phone": "+14155550199", "company": "ACME"},
]
ERASED = "erased@acme.com"


def batch() -> list[dict[str, Any]]:
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    return [
        {"email": "ADA@acme.com", "title": "CTO"},  # an existing lead, by email
        {"email": "new1@initech.com", "company": "Initech"},  # new, and a new account
        {"email": "new1@initech.com", "phone": "+1 415 555 0122"},  # the one before, by email
        {"phone": "(415) 555-0122", "country": "US"},  # the same, by the phone it just got
        {"phone": "+14155550111", "email": "phoebe@umbrella.com"},  # existing, by phone
        {"email": "phoebe@umbrella.com", "first_name": "Phoebe B"},  # by the email just got
        {"email": "not-an-email"},  # refused, naming the field
        {"email": "h@yahoo.com", "company": "GLOBEX Corporation"},  # an account by its name
        {"email": "i@gmail.com", "company": "Hooli Inc"},  # a new account by name
        {"email": "j@outlook.com", "company": "Hooli"},  # ... that the next one finds
        {"email": ERASED},  # an erased person: refused
        {"email": ERASED, "consent": {"data_processing": True, "recorded_at": later}},
        {"phone": "+14155550199"},  # their phone, after their consent lifted the suppression
        {"email": "k@acme.com", "website": "https://acme.com"},  # an account by domain
        {"email": "NEW1@initech.com", "touchpoint_type": "webinar"},  # again, by email
        {"email": "l@initech.com", "phone": "+14155550122"},  # one switchboard, two people
        {"phone": "+14155550122", "last_name": "Nobody"},  # no email: the oldest of the phone
        {"phone": "+14155550100", "employees": "viele"},  # kept raw with a warning
    ]


def submissions(items: list[dict[str, Any]]) -> list[Submission]:
    return [LeadIn.model_validate(item).submission() for item in items]


def prepare(database: Database) -> IngestSettings:
    config = settings(database)
    with database.transaction() as session:
        for submission in submissions(EXISTING):
            capture(session, OUTBOX, submission=submission, settings=config)
    with database.transaction() as session:
        erase_person(session, OUTBOX, email=ERASED, regulation="gdpr", settings=config)
    return config


def one_by_one(
    database: Database, items: list[dict[str, Any]], config: IngestSettings
) -> list[Captured | Rejected]:
    """What the batch endpoint did before: each lead captured in its own savepoint."""
    results: list[Captured | Rejected] = []
    with database.transaction() as session:
        for submission in submissions(items):
            try:
                with session.begin_nested():
                    results.append(capture(session, OUTBOX, submission=submission, settings=config))
            except Rejected as rejected:
                results.append(rejected)
    return results


def together(
    database: Database, items: list[dict[str, Any]], config: IngestSettings
) -> list[Captured | Rejected]:
    with database.transaction() as session:
        return capture_many(session, OUTBOX, submissions=submissions(items), settings=config)


def outcome(database: Database, results: list[Captured | Rejected]) -> dict[str, Any]:
    """Results, rows and events with ids replaced by what they name (random ids differ)."""
    with database.read() as session:
        leads = session.execute(select(Lead)).scalars().all()
        accounts = session.execute(select(Account)).scalars().all()
        touchpoints = session.execute(select(Touchpoint)).scalars().all()
        suppressions = session.execute(select(Suppression)).scalars().all()
        events = session.execute(
            select(TABLES.outbox.c.payload)
            .where(TABLES.outbox.c.topic == "leads.ingested")
            .order_by(TABLES.outbox.c.id)
        ).scalars()
        payloads = [json.loads(payload) for payload in events]
    account_names = {str(a.id): (a.domain, a.name, a.name_key) for a in accounts}
    lead_names = {str(lead.id): (lead.email, lead.phone) for lead in leads}
    per_item: list[tuple[Any, ...]] = []
    for result in results:
        if isinstance(result, Rejected):
            per_item.append(("rejected", [(i.field, i.reason) for i in result.issues]))
        else:
            per_item.append(
                (
                    result.change,
                    result.merged_on,
                    lead_names[str(result.lead_id)],
                    [(i.field, i.reason) for i in result.warnings],
                )
            )
    ignored = {"id", "account_id", "created_at", "updated_at", "erased_at"}
    rows = sorted(
        json.dumps(
            [
                {k: v for k, v in lead.model_dump(mode="json").items() if k not in ignored},
                account_names.get(str(lead.account_id)),
            ],
            sort_keys=True,
        )
        for lead in leads
    )
    timeless = {"created_at", "occurred_at", "touchpoint_id", "account_id", "recorded_at"}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in timeless}
        return value

    return {
        "results": per_item,
        "leads": rows,
        "accounts": sorted(account_names.values(), key=str),
        "touchpoints": sorted(
            str((lead_names[str(t.lead_id)], t.type, t.door, t.source)) for t in touchpoints
        ),
        "suppressions": sorted((s.kind, s.regulation) for s in suppressions),
        "events": [
            (
                lead_names.get(p["lead_id"]),
                p["change"],
                p["merged_on"],
                p["touchpoint_count"],
                strip(p["lead"]),
                account_names.get(str(p["lead"]["company"]["account_id"])),
            )
            for p in payloads
        ],
    }


@pytest.fixture
def twin(db_backend: str, database_factory: DatabaseFactory) -> Any:
    """A second fresh database of the same kind as ``database``."""
    database = database_factory.create(db_backend, DEFINITION)
    yield database
    database_factory.drop(database)


def no_second_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch is captured together: a fallback to one by one would hide a difference."""

    def refused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("capture_many started over one by one")

    monkeypatch.setattr(capturing, "_one_by_one", refused)


def test_a_batch_has_the_outcome_of_its_leads_one_by_one(
    database: Database, twin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_second_pass(monkeypatch)
    items = batch()
    expected = one_by_one(database, items, prepare(database))
    got = together(twin, items, prepare(twin))
    wanted, found = outcome(database, expected), outcome(twin, got)
    for key in wanted:
        assert found[key] == wanted[key], key
    statuses = [r.change if isinstance(r, Captured) else "rejected" for r in got]
    assert statuses.count("rejected") == 2
    assert [r.issues[0].field for r in got if isinstance(r, Rejected)] == ["email", "email"]


def test_a_batch_of_the_same_person_again_and_again_is_one_lead(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_second_pass(monkeypatch)
    config = settings(database)
    items = [{"email": f"Ada@ACME.com{' ' * i}", "campaign": f"c{i}"} for i in range(5)]
    results = together(database, items, config)
    assert [r.change for r in results if isinstance(r, Captured)] == ["created"] + ["merged"] * 4
    assert len({r.lead_id for r in results if isinstance(r, Captured)}) == 1
    counts = [e["touchpoint_count"] for e in outcome_events(database)]
    assert counts == [1, 2, 3, 4, 5]


def outcome_events(database: Database) -> list[dict[str, Any]]:
    with database.read() as session:
        rows = session.execute(
            select(TABLES.outbox.c.payload).order_by(TABLES.outbox.c.id)
        ).scalars()
        return [json.loads(row) for row in rows]


def test_a_lead_a_concurrent_request_created_meanwhile_is_merged_into(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the batch's look-ups and its flush another replica commits the same email:
    the batch is done again one by one, and that lead merged into, nothing lost."""
    if database.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: nothing commits beside a batch")
    config = settings(database)
    prefetched = capturing._Prefetched.__init__

    def meanwhile(self: Any, *args: Any, **kwargs: Any) -> None:
        prefetched(self, *args, **kwargs)

        def other_replica() -> None:
            with database.transaction() as session:
                submission = submissions([{"email": "race@acme.com"}])[0]
                capture(session, OUTBOX, submission=submission, settings=config)

        thread = threading.Thread(target=other_replica)
        thread.start()
        thread.join(30)

    monkeypatch.setattr(capturing._Prefetched, "__init__", meanwhile)
    items = [{"email": "first@acme.com"}, {"email": "race@acme.com", "first_name": "Rae"}]
    results = together(database, items, config)
    assert [r.change for r in results if isinstance(r, Captured)] == ["created", "merged"]
    with database.read() as session:
        emails = sorted(e for e in session.execute(select(col(Lead.email))).scalars() if e)
    assert emails == ["first@acme.com", "race@acme.com"]
    assert [e["change"] for e in outcome_events(database)] == ["created", "created", "merged"]


def test_a_row_built_fast_is_the_row_the_model_builds() -> None:
    """Capture builds its new rows without SQLModel's constructor (shared.db.rows); each
    gets the defaults the model gives, and mutable ones of its own."""
    lead_id, now = uuid.uuid4(), datetime.now(UTC)
    built = [
        new_row(Lead, id=lead_id, email="a@b.com", created_at=now, updated_at=now) for _ in range(2)
    ]
    model = Lead(id=lead_id, email="a@b.com", created_at=now, updated_at=now)
    for row in built:
        assert {name: getattr(row, name) for name in Lead.model_fields} == {
            name: getattr(model, name) for name in Lead.model_fields
        }
    assert built[0].attributes is not built[1].attributes
    assert built[0].consent is not built[1].consent


def test_a_row_built_fast_is_inserted_then_updated_like_any_other(database: Database) -> None:
    """Its values go into the object's dict, not through the ORM's attribute events: the
    INSERT reads them there, and a change after the flush is still an UPDATE."""
    lead_id, now = uuid.uuid4(), datetime.now(UTC)
    with database.transaction() as session:
        lead = new_row(Lead, id=lead_id, email="fast@acme.com", created_at=now, updated_at=now)
        lead.touchpoint_count += 1  # pending: part of the INSERT
        session.add(lead)
        session.flush()
        lead.first_name, lead.attributes = "Fay", {"stand": "B4"}  # persistent: an UPDATE
    with database.read() as session:
        stored = session.get(Lead, lead_id)
        assert stored is not None
        assert (stored.email, stored.touchpoint_count, stored.first_name, stored.attributes) == (
            "fast@acme.com",
            1,
            "Fay",
            {"stand": "B4"},
        )


def test_a_switchboard_with_more_leads_than_a_look_up_returns_is_matched_as_one_by_one(
    database: Database, twin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's look-up of a phone shared by more leads than a look-up returns is cut
    short; once one of them left the phone, the phone's look-ups are queries, which must
    still see the leads the batch created (they are written only at its end). The one that
    left moved to an account the batch created, also written at its end: the query must not
    flush the lead before its account."""
    no_second_pass(monkeypatch)
    switchboard = "+14155550177"
    staff = [
        {"email": f"staff{n}@initech.com", "phone": switchboard}
        for n in range(repository.PHONE_MATCHES)
    ]
    items = [
        # Leaves the switchboard, for a company new to the database.
        {"email": "staff0@initech.com", "phone": "+14155550178", "website": "initrode.com"},
        # New, and dated before everyone at the switchboard (a backfill): the oldest there.
        {
            "email": "founder@initech.com",
            "phone": switchboard,
            "occurred_at": "2020-01-01T09:00:00Z",
        },
        {"phone": switchboard, "first_name": "Reception"},  # no email: the oldest there
    ]
    configs = []
    for db in (database, twin):
        configs.append(prepare(db))
        with db.transaction() as session:
            for submission in submissions(staff):
                capture(session, OUTBOX, submission=submission, settings=configs[-1])
    expected = one_by_one(database, items, configs[0])
    got = together(twin, items, configs[1])
    wanted, found = outcome(database, expected), outcome(twin, got)
    for key in wanted:
        assert found[key] == wanted[key], key
    founder = ("founder@initech.com", switchboard)
    assert found["results"][2][:3] == ("merged", "phone", founder)
    with twin.read() as session:
        moved = session.execute(select(Lead).where(col(Lead.email) == "staff0@initech.com"))
        account = session.get(Account, moved.scalar_one().account_id)
    assert account is not None
    assert account.domain == "initrode.com"


def test_a_submission_alone_reads_only_the_rows_that_can_match_it(database: Database) -> None:
    """Whether anyone has its email, its phone or its domain is one statement; the rows are
    read only for what someone has (a group commit of one request, and most are new)."""
    config = prepare(database)

    def rows_read(item: dict[str, Any]) -> list[str]:
        with statements_sent(database.engine) as sent:
            (result,) = together(database, [item], config)
        assert isinstance(result, Captured)
        # The table of each statement that reads its rows (not the EXISTS probe).
        read = (re.search(r"\bFROM (leads|accounts)\b", s) for s, _ in sent if "EXISTS" not in s)
        return [match[1] for match in read if match is not None]

    wayne = {
        "email": "bruce@wayne-enterprises.com",
        "phone": "+14155550900",
        "website": "wayne-enterprises.com",
    }
    assert rows_read(wayne) == []
    # Her email's domain is her company's, whose account exists.
    assert rows_read({"email": "ada@acme.com", "phone": "+14155550901"}) == ["leads", "accounts"]
    assert rows_read({"email": "new@initech-labs.com", "phone": "+14155550111"}) == ["leads"]
    assert rows_read(
        {"email": "alfred@wayne-enterprises.com", "website": "wayne-enterprises.com"}
    ) == ["accounts"]
    with database.read() as session:
        by_email = {lead.email: lead for lead in session.execute(select(Lead)).scalars()}
    assert (
        by_email["alfred@wayne-enterprises.com"].account_id
        == by_email["bruce@wayne-enterprises.com"].account_id
    )
    assert by_email["ada@acme.com"].touchpoint_count == 2


def test_a_batch_writes_its_new_accounts_in_one_insert_between_merges_too(
    database: Database,
) -> None:
    if database.is_postgresql:
        pytest.skip("PostgreSQL's rows go by COPY, which the statement events do not see")
    config = prepare(database)
    items = [
        {"email": "x1@newco-one.com", "company": "NewCo One"},
        {"email": "ADA@acme.com", "title": "CTO"},  # merged into a lead the batch read
        {"email": "x2@newco-two.com", "company": "NewCo Two"},
        {"email": "gina@gmail.com"},
        {"email": "x3@newco-three.com", "company": "NewCo Three"},
    ]
    with statements_sent(database.engine) as sent:
        results = together(database, items, config)
    assert [r.change for r in results if isinstance(r, Captured)] == [
        "created", "merged", "created", "merged", "created",
    ]  # fmt: skip
    assert len([s for s, _ in sent if re.match(r"INSERT INTO accounts\b", s)]) == 1


def test_a_batch_s_emails_and_phones_are_looked_up_in_their_indexes_not_the_whole_table(
    database: Database,
) -> None:
    """Each email's lead, each phone's oldest leads and whether anyone has them are read
    from the column's index, a value at a time, with or without the table's statistics.
    Planned as one ``= ANY(...)``, PostgreSQL read every lead for each chunk when the table
    had no statistics yet, as in a first import; and the phones, ranked and joined back to
    the table by id, even with them."""
    if database.is_sqlite:
        pytest.skip("SQLite's planner is not the one that scanned the table")
    with database.transaction() as session:
        session.connection().exec_driver_sql(
            "INSERT INTO leads (id, email, phone, free_mail, attributes, consent, crm_ids,"
            " touchpoint_count, created_at, updated_at)"
            " SELECT gen_random_uuid(), 'p' || g || '@example.com',"
            " '+1555' || lpad(mod(g, 10000)::text, 7, '0'), false, '{}', '{}', '{}', 1,"
            " now() - g * interval '1 second', now() FROM generate_series(1, 50000) g"
        )
    phones = [f"+1555{n:07d}" for n in range(0, 10000, 40)] + [f"+1666{n:07d}" for n in range(250)]
    emails = [f"p{n}@example.com" for n in range(1, 50000, 200)] + [
        f"q{n}@example.com" for n in range(250)
    ]
    unknown = {
        "emails": [f"q{n}@example.com" for n in range(500)],
        "phones": [f"+1666{n:07d}" for n in range(500)],
        "domains": [f"d{n}.example.com" for n in range(500)],
    }
    looked_up: dict[str, tuple[Any, dict[str, Any]]] = {
        "emails": (repository._leads_by_emails("postgresql"), {"emails": emails}),
        "phones": (
            repository._leads_by_phones("postgresql"),
            {"phones": phones, "limit": 3},
        ),
        # None of them is there: an EXISTS that scans reads the whole table.
        "known": (repository._any_known("postgresql", each=True), unknown),
    }

    def scans(node: dict[str, Any]) -> list[tuple[str, str]]:
        here = [(node["Node Type"], node.get("Relation Name", ""))]
        return here + [scan for child in node.get("Plans", []) for scan in scans(child)]

    def plans() -> dict[str, list[tuple[str, str]]]:
        read: dict[str, list[tuple[str, str]]] = {}
        with database.transaction() as session:
            for name, (statement, values) in looked_up.items():
                compiled = statement.compile(dialect=session.get_bind().dialect)
                explain = f"EXPLAIN (FORMAT JSON) {compiled.string}"
                parameters = compiled.construct_params(values)
                (plan,) = session.connection().exec_driver_sql(explain, parameters).one()
                read[name] = scans(plan[0]["Plan"])
        return read

    unanalyzed = plans()
    with database.transaction() as session:
        session.connection().exec_driver_sql("ANALYZE leads")
    analyzed = plans()
    for read in (unanalyzed, analyzed):
        for name, scanned in read.items():
            assert not [scan for scan in scanned if scan[1] == "leads" and "Seq" in scan[0]], (
                name,
                scanned,
            )
    with database.transaction() as session:
        by_email = repository.leads_by_emails(session=session, emails=emails)
        by_phone = repository.leads_by_phones(session=session, phones=phones + phones, limit=3)
        known = repository.known(session=session, **unknown)
        # A chunk's worth, so that it is asked (a larger batch is answered "known").
        known_email = repository.known(
            session=session, emails=[emails[0], *unknown["emails"][:499]], phones=[], domains=[]
        )
    assert known == repository.Known(emails=False, phones=False, domains=False)
    assert known_email == repository.Known(emails=True, phones=False, domains=False)
    assert sorted(lead.email or "" for lead in by_email) == sorted(emails[:250])
    # Each known phone's three oldest leads (the largest g: created earliest), in order.
    assert len(by_phone) == 250 * 3
    assert [lead.phone for lead in by_phone] == sorted(lead.phone or "" for lead in by_phone)
    first = [lead for lead in by_phone if lead.phone == "+15550000000"]
    assert [lead.email for lead in first] == [
        "p50000@example.com",
        "p40000@example.com",
        "p30000@example.com",
    ]
