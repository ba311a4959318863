"""Routing a lead, applying feedback and moving SLA clocks: lock, decide, store, emit.

Each function runs inside the caller's transaction (a consumer batch or the SLA worker's)
and publishes through ``emit`` (the outbox) in that same transaction, so the state and its
events are committed together or not at all. The rules are in :mod:`services.routing.domain`;
this module only loads what they need, takes the locks and stores what they decide.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from prometheus_client import Counter
from sqlmodel import Session

from services.routing import repository
from services.routing.domain.decision import Decision, decide, decide_nurture, teams_involved
from services.routing.domain.lifecycle import LeadState, feedback_effect, on_rescore
from services.routing.domain.model import (
    NURTURE_GRADES,
    LeadFacts,
    RoutingConfig,
    normalize_domain,
)
from services.routing.domain.sla import SlaPolicy, on_breach, start_clock
from services.routing.models import ERASURES, AssignmentRow, FeedbackRow, RoutedLeadRow
from shared.contracts import (
    EventPayload,
    LeadErasedV1,
    LeadFeedbackV1,
    LeadRoutedV1,
    LeadScoredV1,
    LeadSlaV1,
    RepRef,
    SkippedCandidate,
)
from shared.db.rows import new_row
from shared.ids import new_uuid
from shared.observability.logs import get_logger

log = get_logger(__name__)

Emit = Callable[[EventPayload], object]

LEADS_ROUTED = Counter(
    "leadflow_routing_decisions", "Routing decisions by outcome and rule.", ["outcome", "rule"]
)
LEADS_QUEUED = Counter(
    "leadflow_routing_queued",
    "Leads nobody could take (queued for a team, or no team at all): the alert count.",
    ["team"],
)
SLA_EVENTS = Counter("leadflow_routing_sla", "SLA clock events by status.", ["status"])

STATE_OF_OUTCOME: dict[str, LeadState] = {
    "assigned": "open",
    "nurture": "nurturing",
    "queued": "queued",
}
RUNNING = ("running", "warned")


def facts_of(lead: RoutedLeadRow, *, grade: str | None = None) -> LeadFacts:
    return LeadFacts(
        lead_id=lead.lead_id,
        grade=(grade or lead.grade),  # type: ignore[arg-type]
        country=lead.country,
        region=lead.region,
        postal_code=lead.postal_code,
        vertical=lead.vertical,
        domain=lead.domain,
    )


def _state(lead: RoutedLeadRow) -> LeadState | None:
    return lead.state  # type: ignore[return-value]


# ---------------------------------------------------------------- deciding and recording


def _decide(
    session: Session, *, facts: LeadFacts, now: datetime, excluded: frozenset[str]
) -> tuple[Decision, RoutingConfig]:
    """Decide under the locks of the teams involved, and store the round robin's move.
    A nurture grade reads neither round robins nor loads: nothing to lock."""
    config = repository.routing_config(session)
    if facts.grade in NURTURE_GRADES:
        return decide(facts, config=config, rotations={}, loads={}, now=now), config
    teams = teams_involved(facts, config)
    rotations = repository.lock_rotations(session, team_ids=teams, now=now)
    loads = repository.kept_loads(session, rep_ids=_reps_weighed(facts, teams, config))
    decision = decide(
        facts, config=config, rotations=rotations, loads=loads, now=now, excluded=excluded
    )
    if decision.rotation is not None and decision.rotation_team_id is not None:
        repository.save_rotation(
            session,
            team_id=decision.rotation_team_id,
            before=rotations[decision.rotation_team_id],
            after=decision.rotation,
            now=now,
        )
    return decision, config


def _reps_weighed(facts: LeadFacts, teams: Collection[str], config: RoutingConfig) -> list[str]:
    """The reps whose loads a decision for the lead reads: the members of the teams
    involved and the named account's owner."""
    members = [rep.rep_id for rep in config.reps.values() if rep.team_id in teams]
    account = config.accounts.get(normalize_domain(facts.domain) or "")
    return [*members, *([account.rep_id] if account else [])]


def _lock_teams_of(session: Session, scores: Sequence[LeadScoredV1], *, now: datetime) -> None:
    """Lock the round robins and count the loads that routing these scores may need, for
    them all at once (each lead's decision then finds them kept). Locking every team up
    front also takes the locks in one team id order for the whole run, where lead by lead
    a run would take them in the order its leads came. A score that ends up not routed
    (an older one, a grade that keeps the lead where it is) locked its teams for nothing."""
    wanted = [_facts_of_score(score) for score in scores if score.grade not in NURTURE_GRADES]
    if not wanted:
        return
    config = repository.routing_config(session)
    teams: set[str] = set()
    reps: set[str] = set()
    for facts in wanted:
        involved = teams_involved(facts, config)
        teams.update(involved)
        reps.update(_reps_weighed(facts, involved, config))
    repository.lock_rotations(session, team_ids=teams, now=now)
    repository.kept_loads(session, rep_ids=reps)


def _facts_of_score(score: LeadScoredV1) -> LeadFacts:
    """What :func:`facts_of` gives for the lead once the score is kept."""
    snapshot = score.lead
    return LeadFacts(
        lead_id=score.lead_id,
        grade=score.grade,
        country=snapshot.country,
        region=snapshot.region,
        postal_code=snapshot.postal_code,
        vertical=snapshot.company.vertical,
        domain=snapshot.company.domain,
    )


def _record(
    session: Session,
    *,
    lead: RoutedLeadRow,
    decision: Decision,
    config: RoutingConfig,
    policy: SlaPolicy,
    now: datetime,
    emit: Emit,
    previous: AssignmentRow | None = None,
    ended_reason: str | None = None,
    attempt: int = 1,
    grade: str | None = None,
) -> AssignmentRow:
    """Store a decision as the lead's current assignment, start its clock, publish it."""
    grade = grade or lead.grade
    if previous is not None:
        if previous.state != "closed":
            previous.state = "superseded"
        previous.ended_reason = ended_reason
        previous.ended_at = now
    assignment = new_row(
        AssignmentRow,
        id=new_uuid(),
        lead_id=lead.lead_id,
        attempt=attempt,
        outcome=decision.outcome,
        grade=grade,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        program_id=decision.program_id,
        rule=decision.rule,
        explanation=decision.explanation,
        skipped=[{"rep_id": s.rep_id, "reason": s.reason} for s in decision.skipped],
        reassignment_of=previous.id if previous else None,
        routed_at=now,
        state=STATE_OF_OUTCOME[decision.outcome],
    )
    rep = config.reps.get(decision.rep_id) if decision.rep_id else None
    if rep is not None:
        clock = start_clock(now, grade, rep.hours, policy)
        if clock is not None:
            assignment.sla_status = "running"
            assignment.sla_warn_at = clock.warn_at
            assignment.sla_due_at = clock.due_at
    session.add(assignment)
    lead.current_assignment_id = assignment.id
    lead.state = assignment.state
    if decision.outcome == "assigned":
        lead.recycled = False
    lead.updated_at = now
    emit(
        LeadRoutedV1(
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            outcome=decision.outcome,
            grade=grade,
            rep=RepRef(
                rep_id=rep.rep_id, name=rep.name, email=rep.email, crm_user_id=rep.crm_user_id
            )
            if rep
            else None,
            team_id=decision.team_id,
            program_id=decision.program_id,
            rule=decision.rule,
            explanation=decision.explanation,
            skipped=[SkippedCandidate(rep_id=s.rep_id, reason=s.reason) for s in decision.skipped],
            sla_due_at=assignment.sla_due_at,
            reassignment_of=assignment.reassignment_of,
            attempt=attempt,
            routed_at=now,
        )
    )
    LEADS_ROUTED.labels(decision.outcome, decision.rule).inc()
    if decision.outcome == "queued":
        LEADS_QUEUED.labels(decision.team_id or "none").inc()
        log.warning(
            "lead queued: nobody can take it",
            lead_id=str(lead.lead_id),
            team_id=decision.team_id,
            rule=decision.rule,
            explanation=decision.explanation,
        )
    return assignment


def _with_prefix(decision: Decision, prefix: str | None) -> Decision:
    if not prefix:
        return decision
    return replace(decision, explanation=f"{prefix}; {decision.explanation}")


# ---------------------------------------------------------------- leads.scored


@dataclass
class ScoredLeads:
    """What routing a run of ``leads.scored`` records reads up front, with a statement each
    rather than a statement a record: the erased among the leads (their erasure turns held),
    their rows (locked, in key order), the feedback that waits for their assignment, and
    the round robins and loads of the teams they may go to (:func:`_lock_teams_of`).
    Records of the run add the leads they create, so a lead twice in a run is found."""

    erased: set[uuid.UUID]
    leads: dict[uuid.UUID, RoutedLeadRow]
    pending: dict[uuid.UUID, list[FeedbackRow]]

    @classmethod
    def read(
        cls, session: Session, scores: Sequence[LeadScoredV1], *, now: datetime
    ) -> ScoredLeads:
        lead_ids = [score.lead_id for score in scores]
        erased = ERASURES.hold_many(session, lead_ids)
        live = set(lead_ids) - erased
        read = cls(
            erased,
            repository.lock_leads(session, lead_ids=live),
            repository.pending_feedback_of(session, lead_ids=live),
        )
        _lock_teams_of(session, [score for score in scores if score.lead_id in live], now=now)
        return read


def on_lead_scored(
    session: Session,
    *,
    payload: LeadScoredV1,
    now: datetime,
    emit: Emit,
    read: ScoredLeads | None = None,
) -> AssignmentRow | None:
    """Keep the lead's latest facts; route it if it is new, or if the new score calls for
    it (out of nurture on a grade rise, out of a queue when someone can take it now).
    ``read``: what was read for the run of records this one is in (else read for it)."""
    read = read or ScoredLeads.read(session, [payload], now=now)
    if payload.lead_id in read.erased:
        log.info("score of an erased lead ignored", lead_id=str(payload.lead_id))
        return None
    snapshot = payload.lead
    lead = read.leads.get(payload.lead_id)
    if lead is not None and payload.scored_at < lead.scored_at:
        log.info("older score ignored", lead_id=str(payload.lead_id))
        return None
    if lead is None:
        lead = new_row(
            RoutedLeadRow,
            lead_id=payload.lead_id,
            grade=payload.grade,
            scored_at=now,
            updated_at=now,
        )
        session.add(lead)
        read.leads[payload.lead_id] = lead
    lead.grade = payload.grade
    lead.previous_grade = payload.previous_grade
    lead.country = snapshot.country
    lead.region = snapshot.region
    lead.postal_code = snapshot.postal_code
    lead.vertical = snapshot.company.vertical
    lead.domain = snapshot.company.domain
    lead.scored_at = payload.scored_at
    lead.updated_at = now

    action = on_rescore(
        _state(lead),
        grade=payload.grade,
        previous_grade=payload.previous_grade,
        recycled=lead.recycled,
        trigger=payload.trigger,
    )
    if not action.route:
        return None
    current = (
        session.get(AssignmentRow, lead.current_assignment_id)
        if lead.current_assignment_id
        else None
    )
    excluded = (
        repository.reps_who_had(session, lead_id=lead.lead_id)
        if lead.state == "queued"
        else frozenset()
    )
    decision, config = _decide(session, facts=facts_of(lead), now=now, excluded=excluded)
    if (
        current is not None
        and current.state == "queued"
        and decision.outcome == "queued"
        and decision.team_id == current.team_id
    ):
        return None  # still waiting in the same queue: no second alert
    policy = repository.routing_policy(session)
    assignment = _record(
        session,
        lead=lead,
        decision=_with_prefix(decision, action.why if current is not None else None),
        config=config,
        policy=policy,
        now=now,
        emit=emit,
        previous=current,
        ended_reason="rerouted" if current is not None else None,
    )
    _apply_pending(
        session,
        lead=lead,
        assignment=assignment,
        config=config,
        now=now,
        emit=emit,
        pending=read.pending.get(lead.lead_id, []),
    )
    return assignment


# ---------------------------------------------------------------- leads.feedback


def on_feedback(
    session: Session, *, payload: LeadFeedbackV1, event_id: str, now: datetime, emit: Emit
) -> FeedbackRow | None:
    """Record the feedback and apply it to the lead's current assignment; feedback about a
    lead routing has not assigned yet is kept and applied when it is. Feedback about an
    erased lead (arriving late: topics are not ordered with each other) is dropped."""
    if ERASURES.hold(session, payload.lead_id):
        log.info("feedback of an erased lead dropped", lead_id=str(payload.lead_id))
        return None
    feedback = new_row(
        FeedbackRow,
        event_id=event_id,
        lead_id=payload.lead_id,
        status=payload.status,
        rejection_reason=payload.rejection_reason,
        note=payload.note,
        opportunity_id=payload.opportunity_id,
        amount=payload.amount,
        currency=payload.currency,
        source=payload.source,
        rep_crm_user_id=payload.rep_crm_user_id,
        occurred_at=payload.occurred_at,
        received_at=now,
    )
    session.add(feedback)
    lead = repository.lock_lead(session, lead_id=payload.lead_id)
    if lead is None or lead.current_assignment_id is None:
        log.info("feedback kept until the lead is routed", lead_id=str(payload.lead_id))
        return feedback
    current = session.get(AssignmentRow, lead.current_assignment_id)
    assert current is not None
    config = repository.routing_config(session)
    if lead.state == "nurturing" and _names_another_rep(feedback, session, lead):
        log.info(
            "feedback names a rep the lead is not assigned to: kept", lead_id=str(lead.lead_id)
        )
        return feedback
    _apply(
        session, lead=lead, assignment=current, feedback=feedback, config=config, now=now, emit=emit
    )
    return feedback


def _names_another_rep(feedback: FeedbackRow, session: Session, lead: RoutedLeadRow) -> bool:
    """The feedback names a CRM user who never had the lead: it is about an assignment
    still to come (its score may be on its way)."""
    if not feedback.rep_crm_user_id:
        return False
    config = repository.routing_config(session)
    had = repository.reps_who_had(session, lead_id=lead.lead_id)
    crm_ids = {config.reps[rep].crm_user_id for rep in had if rep in config.reps}
    return feedback.rep_crm_user_id not in crm_ids


def _applies_to(feedback: FeedbackRow, assignment: AssignmentRow, config: RoutingConfig) -> bool:
    if assignment.outcome == "nurture":
        return False
    if not feedback.rep_crm_user_id or assignment.rep_id is None:
        return True
    rep = config.reps.get(assignment.rep_id)
    return rep is not None and rep.crm_user_id == feedback.rep_crm_user_id


def _apply_pending(
    session: Session,
    *,
    lead: RoutedLeadRow,
    assignment: AssignmentRow,
    config: RoutingConfig,
    now: datetime,
    emit: Emit,
    pending: list[FeedbackRow] | None = None,
) -> None:
    """Apply the feedback that waited for the lead's assignment (``pending``: as read
    before, else read now)."""
    if pending is None:
        pending = repository.pending_feedback(session, lead_id=lead.lead_id)
    for feedback in pending:
        if feedback.assignment_id is not None:
            continue  # applied meanwhile, by an earlier record of the same run
        current = session.get(AssignmentRow, lead.current_assignment_id)
        if current is None or not _applies_to(feedback, current, config):
            continue
        _apply(
            session,
            lead=lead,
            assignment=current,
            feedback=feedback,
            config=config,
            now=now,
            emit=emit,
        )


def _apply(
    session: Session,
    *,
    lead: RoutedLeadRow,
    assignment: AssignmentRow,
    feedback: FeedbackRow,
    config: RoutingConfig,
    now: datetime,
    emit: Emit,
) -> None:
    effect = feedback_effect(
        status=feedback.status,
        rejection_reason=feedback.rejection_reason,
        occurred_at=feedback.occurred_at,
        clock_running=assignment.sla_status in RUNNING,
        due_at=assignment.sla_due_at,
    )
    feedback.assignment_id = assignment.id
    feedback.applied_at = now
    assignment.feedback_status = feedback.status
    assignment.rejection_reason = feedback.rejection_reason
    if feedback.opportunity_id:
        assignment.opportunity_id = feedback.opportunity_id
    if feedback.amount is not None:
        assignment.amount = feedback.amount
        assignment.currency = feedback.currency
    if assignment.first_feedback_at is None:
        assignment.first_feedback_at = feedback.occurred_at
    if effect.stops_clock and assignment.sla_due_at is not None:
        status = "met" if effect.sla_met else "late"
        assignment.sla_status = status
        assignment.sla_settled_at = now
        _emit_sla(emit, assignment, "met" if effect.sla_met else "breached", now)
    if assignment.outcome == "nurture":
        if effect.closes and not effect.recycle_to_nurture:
            assignment.state = "closed"
            assignment.closed_at = now
            lead.state = "closed"
        return
    if effect.closes:
        assignment.state = "closed"
        assignment.closed_at = now
        lead.state = "closed"
    elif assignment.state == "queued":
        assignment.state = "open"  # somebody followed it up: no longer waiting
        lead.state = "open"
    lead.updated_at = now
    if effect.recycle_to_nurture:
        decision = decide_nurture(facts_of(lead), config, as_grade="C")
        decision = replace(
            decision,
            rule="recycled",
            explanation=f"rejected for no timeframe: recycled to nurture; {decision.explanation}",
        )
        _record(
            session,
            lead=lead,
            decision=decision,
            config=config,
            policy=SlaPolicy(),
            now=now,
            emit=emit,
            previous=assignment,
            ended_reason="recycled",
        )
        lead.recycled = True


# ---------------------------------------------------------------- SLA clocks


def _emit_sla(emit: Emit, assignment: AssignmentRow, status: str, now: datetime) -> None:
    assert assignment.sla_due_at is not None
    emit(
        LeadSlaV1(
            lead_id=assignment.lead_id,
            assignment_id=assignment.id,
            status=status,
            grade=assignment.grade,
            rep_id=assignment.rep_id,
            team_id=assignment.team_id,
            due_at=assignment.sla_due_at,
            occurred_at=now,
        )
    )
    SLA_EVENTS.labels(status).inc()


def on_timer(
    session: Session,
    *,
    assignment_id: uuid.UUID,
    lead_id: uuid.UUID,
    now: datetime,
    emit: Emit,
) -> str | None:
    """Move one due clock: a warning, or a breach and what follows it. ``None`` when there
    was nothing to do (settled meanwhile, or another instance has the lead locked)."""
    lead = repository.lock_lead(session, lead_id=lead_id, skip_locked=True)
    if lead is None:
        return None
    assignment = session.get(AssignmentRow, assignment_id, populate_existing=True)
    if assignment is None or assignment.sla_status not in RUNNING:
        return None
    assert assignment.sla_due_at is not None
    assert assignment.sla_warn_at is not None
    if assignment.sla_due_at > now:
        if assignment.sla_status == "running" and assignment.sla_warn_at <= now:
            assignment.sla_status = "warned"
            _emit_sla(emit, assignment, "warning", now)
            return "warning"
        return None
    return _breach(session, lead=lead, assignment=assignment, now=now, emit=emit)


def _breach(
    session: Session, *, lead: RoutedLeadRow, assignment: AssignmentRow, now: datetime, emit: Emit
) -> str:
    assignment.sla_status = "breached"
    assignment.sla_settled_at = now
    _emit_sla(emit, assignment, "breached", now)
    policy = repository.routing_policy(session)
    due = assignment.sla_due_at.isoformat() if assignment.sla_due_at else "?"
    prefix = f"follow-up SLA of {assignment.rep_id} breached (due {due})"
    facts = facts_of(lead, grade=assignment.grade)
    nobody: Decision | None = None
    if on_breach(assignment.attempt, policy) == "reassign":
        excluded = repository.reps_who_had(session, lead_id=lead.lead_id)
        decision, config = _decide(session, facts=facts, now=now, excluded=excluded)
        if decision.outcome == "assigned":
            _emit_sla(emit, assignment, "reassigned", now)
            _record(
                session,
                lead=lead,
                decision=_with_prefix(
                    decision, f"{prefix}; re-assigned (attempt {assignment.attempt + 1})"
                ),
                config=config,
                policy=policy,
                now=now,
                emit=emit,
                previous=assignment,
                ended_reason="sla_breach",
                attempt=assignment.attempt + 1,
                grade=assignment.grade,
            )
            return "reassigned"
        nobody = decision
        why = f"nobody else can take it ({decision.explanation})"
    else:
        why = f"{policy.max_reassignments} re-assignment(s) already made"
    config = repository.routing_config(session)
    team_id = assignment.team_id
    _emit_sla(emit, assignment, "escalated", now)
    _record(
        session,
        lead=lead,
        decision=Decision(
            outcome="queued",
            rule="escalation",
            team_id=team_id,
            explanation=f"{prefix}; {why}: escalated to the queue of team {team_id}",
            skipped=nobody.skipped if nobody else (),
        ),
        config=config,
        policy=policy,
        now=now,
        emit=emit,
        previous=assignment,
        ended_reason="sla_breach",
        attempt=assignment.attempt + 1,
        grade=assignment.grade,
    )
    return "escalated"


# ---------------------------------------------------------------- team queues

DRAINED_RULES = ("team_queue", "no_team")


def retry_queued(
    session: Session,
    *,
    assignment_id: uuid.UUID,
    lead_id: uuid.UUID,
    now: datetime,
    emit: Emit,
) -> bool:
    """Route a lead waiting in a queue again, now that someone may be able to take it.
    Escalated leads stay for their team to handle. True when it was assigned."""
    lead = repository.lock_lead(session, lead_id=lead_id, skip_locked=True)
    if lead is None or lead.current_assignment_id != assignment_id:
        return False
    queued = session.get(AssignmentRow, assignment_id, populate_existing=True)
    if queued is None or queued.state != "queued" or queued.rule not in DRAINED_RULES:
        return False
    excluded = repository.reps_who_had(session, lead_id=lead.lead_id)
    decision, config = _decide(
        session, facts=facts_of(lead, grade=queued.grade), now=now, excluded=excluded
    )
    if decision.outcome != "assigned":
        return False
    where = f"team {queued.team_id}" if queued.team_id else "no team"
    assignment = _record(
        session,
        lead=lead,
        decision=_with_prefix(decision, f"waited in the queue ({where}); taken once someone could"),
        config=config,
        policy=repository.routing_policy(session),
        now=now,
        emit=emit,
        previous=queued,
        ended_reason="taken_from_queue",
        grade=queued.grade,
    )
    _apply_pending(session, lead=lead, assignment=assignment, config=config, now=now, emit=emit)
    return True


# ---------------------------------------------------------------- leads.erased

ERASED_TEXT = "[erased]"


def on_erased(session: Session, *, payload: LeadErasedV1, now: datetime) -> None:
    """Anonymise what routing holds of an erased lead, and never route it again.

    The lead's postal code goes (from its row and from the explanations that quote it) and so
    do the notes of its feedback; its current assignment is closed (``ended_reason``
    ``erased``): the rep's capacity is freed, a running SLA clock is cancelled (no warning,
    breach or re-assignment will follow) and a queued lead leaves its queue. Grades,
    outcomes, reps, teams, dispositions and amounts stay: they are no one's personal data.
    Nothing is published for it.
    """
    ERASURES.hold(session, payload.lead_id)
    ERASURES.remember(session, lead_id=payload.lead_id, erased_at=payload.erased_at)
    lead = repository.lock_lead(session, lead_id=payload.lead_id)
    postal_code = lead.postal_code if lead is not None else None
    for assignment in repository.lead_assignments(session, lead_id=payload.lead_id):
        if postal_code:
            assignment.explanation = assignment.explanation.replace(postal_code, ERASED_TEXT)
        if assignment.state in ("open", "nurturing", "queued"):
            assignment.state = "closed"
            assignment.ended_reason = "erased"
            assignment.ended_at = now
            assignment.closed_at = now
        if assignment.sla_status in RUNNING:
            assignment.sla_status = "cancelled"
            assignment.sla_settled_at = now
    for feedback in repository.lead_feedback(session, lead_id=payload.lead_id):
        feedback.note = None
    if lead is not None:
        lead.postal_code = None
        lead.state = "closed" if lead.state is not None else None
        lead.updated_at = now
    session.flush()
    ERASURES.purge_outbox(session, lead_ids=[payload.lead_id], now=now)
