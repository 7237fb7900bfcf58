"""The paging hygiene report: what pages cost each team and gate, and the anti-patterns."""

# The rules, exactly (each one has a test):
#
# - A page counts if it was created in [since, until). Its events count whenever they happened:
#   a page acknowledged after the window closed was still acknowledged.
# - Night: the page was created in [00:00, 06:00) in the RECIPIENT's own zone (the rest rule's
#   night). A page with no recipient, or one whose recipient has no known zone, is counted in
#   its team's fallback zone (the CLI passes the team's first member's), else in UTC; the
#   report says how many pages that was, per team.
# - Time to acknowledge: from the page's creation to its first `acknowledged` event. Pages
#   never acknowledged are left out of the median (and counted as not acknowledged).
# - Feedback: a page's LAST feedback event is its verdict (people correct themselves), so a
#   page is misrouted or not actionable, never both.
# - A gate is a (service, gate) pair: two services' "health" gates are different gates. A page
#   with no gate is a failed deploy, reported as the gate "deploy".
# - Findings: a gate with >= 3 pages of which >= 50 % were not actionable; an ownership (a
#   service paging a team) with >= 3 pages of which >= 30 % were misrouted; a team with more
#   night pages than its budget (per week, scaled to the window's length).

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from zoneinfo import ZoneInfo

from rollout.domain.oncall import NIGHT_ENDS

__all__ = [
    "ACKNOWLEDGED",
    "DEPLOY_GATE",
    "MISROUTED",
    "NOT_ACTIONABLE",
    "EventFact",
    "Finding",
    "FindingKind",
    "GateStats",
    "HygieneReport",
    "PageFact",
    "Tally",
    "TeamStats",
    "report",
]

# The action strings page_events holds (see rollout.domain.pages and the feedback route).
ACKNOWLEDGED = "acknowledged"
MISROUTED = "misrouted"
NOT_ACTIONABLE = "not_actionable"
FEEDBACK = frozenset({MISROUTED, NOT_ACTIONABLE})

DEPLOY_GATE = "deploy"
WEEK = timedelta(days=7)

# Below this many pages a rate says more about chance than about the gate or the ownership.
MIN_PAGES = 3
NOISY_GATE_SHARE = Fraction(1, 2)
MISROUTE_SHARE = Fraction(3, 10)


class FindingKind(StrEnum):
    NOISY_GATE = "noisy_gate"
    MISROUTED_OWNERSHIP = "misrouted_ownership"
    NIGHT_BUDGET = "night_budget"


@dataclass(frozen=True)
class EventFact:
    """What someone did with a page: an action of page_events, and whose it was if misrouted."""

    action: str
    at: datetime
    misrouted_to: str | None = None


@dataclass(frozen=True)
class PageFact:
    """A page as the report needs it; `gate` None means the deploy itself failed."""

    id: int
    team: str
    service: str
    gate: str | None
    created_at: datetime
    recipient: str | None = None
    events: tuple[EventFact, ...] = ()

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("a page's created_at must be aware")

    @property
    def gate_name(self) -> str:
        return self.gate or DEPLOY_GATE

    def _last_feedback(self) -> EventFact | None:
        feedback = [e for e in self.events if e.action in FEEDBACK]
        return max(feedback, key=lambda e: e.at) if feedback else None

    def verdict(self) -> str | None:
        """misrouted, not_actionable or None: the last feedback given, if any."""
        last = self._last_feedback()
        return last.action if last else None

    def misrouted_to(self) -> str | None:
        """Whose the page was, by its last feedback."""
        last = self._last_feedback()
        return last.misrouted_to if last else None

    def time_to_acknowledge(self) -> timedelta | None:
        acks = [e.at for e in self.events if e.action == ACKNOWLEDGED]
        return min(acks) - self.created_at if acks else None


@dataclass(frozen=True)
class Tally:
    """The numbers every row of the report has, for some set of pages."""

    pages: int
    night_pages: int
    acknowledged: int
    median_ack_seconds: float | None
    misrouted: int
    not_actionable: int

    @property
    def misroute_rate(self) -> float:
        return self.misrouted / self.pages if self.pages else 0.0

    @property
    def false_positive_rate(self) -> float:
        return self.not_actionable / self.pages if self.pages else 0.0


@dataclass(frozen=True)
class TeamStats:
    team: str
    tally: Tally
    night_budget: float  # night pages allowed in the window
    # Pages whose night was judged in a fallback zone: no recipient, or one of unknown zone.
    zone_assumed: int


@dataclass(frozen=True)
class GateStats:
    service: str
    gate: str
    tally: Tally

    @property
    def subject(self) -> str:
        return f"{self.service}/{self.gate}"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    subject: str
    message: str


@dataclass(frozen=True)
class HygieneReport:
    since: datetime
    until: datetime
    night_budget_per_week: float
    teams: tuple[TeamStats, ...]
    gates: tuple[GateStats, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]


def _is_night(page: PageFact, zone: ZoneInfo) -> bool:
    return page.created_at.astimezone(zone).time() < NIGHT_ENDS


def _zone(
    page: PageFact, zones: Mapping[str, ZoneInfo], team_zones: Mapping[str, ZoneInfo]
) -> tuple[ZoneInfo, bool]:
    """The zone the page's night is judged in, and whether it was assumed."""
    if page.recipient is not None and page.recipient in zones:
        return zones[page.recipient], False
    return team_zones.get(page.team, ZoneInfo("UTC")), True


def _tally(pages: Sequence[PageFact], night: Mapping[int, bool]) -> Tally:
    acks = [t.total_seconds() for t in (p.time_to_acknowledge() for p in pages) if t is not None]
    verdicts = Counter(p.verdict() for p in pages)
    return Tally(
        pages=len(pages),
        night_pages=sum(1 for p in pages if night[p.id]),
        acknowledged=len(acks),
        median_ack_seconds=statistics.median(acks) if acks else None,
        misrouted=verdicts[MISROUTED],
        not_actionable=verdicts[NOT_ACTIONABLE],
    )


def _percent(part: int, whole: int) -> str:
    return f"{part} of {whole} pages ({part / whole:.0%})"


def report(
    pages: Sequence[PageFact],
    since: datetime,
    until: datetime,
    zones: Mapping[str, ZoneInfo],
    night_budget_per_week: float = 2,
    *,
    team_zones: Mapping[str, ZoneInfo] | None = None,
    teams: Sequence[str] = (),
) -> HygieneReport:
    """The report on the pages created in [since, until). `zones` maps members to their zones;
    `team_zones` gives each team's fallback zone; `teams` are listed even with no pages."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be aware")
    if until <= since:
        raise ValueError("the window must end after it starts")
    if night_budget_per_week < 0:
        raise ValueError("the night-page budget must not be negative")
    fallback = team_zones or {}
    in_window = sorted(
        (p for p in pages if since <= p.created_at < until), key=lambda p: (p.created_at, p.id)
    )
    night: dict[int, bool] = {}
    assumed: Counter[str] = Counter()
    assumed_zone: dict[str, str] = {}
    for page in in_window:
        zone, was_assumed = _zone(page, zones, fallback)
        night[page.id] = _is_night(page, zone)
        if was_assumed:
            assumed[page.team] += 1
            assumed_zone[page.team] = str(zone)

    by_team: dict[str, list[PageFact]] = {name: [] for name in teams}
    by_gate: dict[tuple[str, str], list[PageFact]] = {}
    by_ownership: dict[tuple[str, str], list[PageFact]] = {}
    for page in in_window:
        by_team.setdefault(page.team, []).append(page)
        by_gate.setdefault((page.service, page.gate_name), []).append(page)
        by_ownership.setdefault((page.service, page.team), []).append(page)

    budget = night_budget_per_week * ((until - since) / WEEK)
    team_stats = tuple(
        TeamStats(name, _tally(group, night), budget, assumed[name])
        for name, group in sorted(by_team.items())
    )
    gate_stats = tuple(
        GateStats(service, gate, _tally(group, night))
        for (service, gate), group in sorted(by_gate.items())
    )
    findings = [
        *_noisy_gates(gate_stats),
        *_misrouted_ownerships(by_ownership),
        *_night_budgets(team_stats, since, until, night_budget_per_week),
    ]
    notes = tuple(
        f"{name}: {count} page(s) had no recipient of known zone; their night was judged in "
        f"{assumed_zone[name]}"
        for name, count in sorted(assumed.items())
    )
    return HygieneReport(
        since, until, night_budget_per_week, team_stats, gate_stats, tuple(findings), notes
    )


def _noisy_gates(gates: Iterable[GateStats]) -> Iterable[Finding]:
    for gate in gates:
        t = gate.tally
        if t.pages >= MIN_PAGES and Fraction(t.not_actionable, t.pages) >= NOISY_GATE_SHARE:
            yield Finding(
                FindingKind.NOISY_GATE,
                gate.subject,
                f"gate {gate.subject} pages without cause: {_percent(t.not_actionable, t.pages)} "
                "were marked not actionable; fix its condition or stop it paging",
            )


def _misrouted_ownerships(
    ownerships: Mapping[tuple[str, str], Sequence[PageFact]],
) -> Iterable[Finding]:
    for (service, team), group in sorted(ownerships.items()):
        misrouted = [p for p in group if p.verdict() == MISROUTED]
        if len(group) < MIN_PAGES or Fraction(len(misrouted), len(group)) < MISROUTE_SHARE:
            continue
        targets = Counter(p.misrouted_to() or "an unnamed team" for p in misrouted)
        # Most rerouted first; a tie goes to the first name, so the report is stable.
        target, count = min(targets.items(), key=lambda item: (-item[1], item[0]))
        yield Finding(
            FindingKind.MISROUTED_OWNERSHIP,
            f"{service} → {team}",
            f"{service} pages team {team}, but {_percent(len(misrouted), len(group))} were "
            f"marked misrouted, most to {target} ({count}); fix the service's owner or routing",
        )


def _night_budgets(
    teams: Iterable[TeamStats], since: datetime, until: datetime, per_week: float
) -> Iterable[Finding]:
    days = (until - since) / timedelta(days=1)
    for team in teams:
        if team.tally.night_pages > team.night_budget:
            yield Finding(
                FindingKind.NIGHT_BUDGET,
                team.team,
                f"team {team.team} was paged at night {team.tally.night_pages} times in "
                f"{days:g} days, over its budget of {team.night_budget:.3g} "
                f"({per_week:g} a week)",
            )
