"""The customer-side components of an assessment, each a score in [-1, 1] with the raw
figure it came from (docs/scoring.md says what each means)."""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import fmean

from models.plan import ScoringSettings
from models.scoring import usage
from models.scoring.usage import clip
from models.signals import ACTIVE_USERS, Observation, SignalKind
from models.success_plan import SuccessPlan

MRR_CHANGE_FULL = 0.2  # a 20 % down- (or up-) grade scores -1 (+1)


def latest(observations: list[Observation], kind: SignalKind) -> list[Observation]:
    return sorted((o for o in observations if o.kind is kind), key=lambda o: o.observed_at)


def per_month(reports: list[Observation], window_days: int) -> float:
    """The reports' sum as a 30-day rate over the time they cover: from the earliest
    period's start to the latest report when every report says its period (a month's
    tickets are a month's, not the window's), else the whole window (a count without a
    period could fall anywhere in it)."""
    total = sum(o.value for o in reports)
    starts = [o.period_start for o in reports if o.period_start is not None]
    if len(starts) < len(reports):
        return total / window_days * 30
    covered = max(o.observed_at for o in reports) - min(starts)
    return total / max(1.0, covered.total_seconds() / 86_400) * 30


def net_promoter_score(answers: list[float]) -> float:
    """% promoters (9-10) minus % detractors (0-6) among the answers, -100..100."""
    promoters = sum(1 for a in answers if a >= 9)
    detractors = sum(1 for a in answers if a <= 6)
    return 100 * (promoters - detractors) / len(answers)


def _expected_progress(as_of: datetime, started: datetime, target: datetime) -> float:
    span = (target - started).total_seconds()
    if span <= 0:
        return 1.0
    return max(0.0, min(1.0, (as_of - started).total_seconds() / span))


def goal_progress(plan: SuccessPlan | None, observations: list[Observation]) -> dict[str, float]:
    """Goal key -> share of the way from baseline to target, from the latest measurement."""
    if plan is None:
        return {}
    progress: dict[str, float] = {}
    for goal in plan.goals:
        measured = [o for o in latest(observations, SignalKind.goal) if o.goal_key == goal.key]
        if measured:
            progress[goal.key] = round(goal.progress(measured[-1].value), 4)
    return progress


class CustomerSide:
    """Works out the components from one account's signals inside the window; `inputs`
    collects the raw figures, for the explanation."""

    def __init__(
        self,
        window: list[Observation],
        settings: ScoringSettings,
        as_of: datetime,
        inputs: dict[str, float],
    ) -> None:
        self.window, self.settings, self.as_of, self.inputs = window, settings, as_of, inputs
        self.components: dict[str, float] = {}
        u = settings.usage
        self.windows = usage.Windows(u.recent_days, u.baseline_days)
        self.series = usage.daily_series(window, as_of)
        self.levels = usage.recent_levels(self.series, self.windows)

    def said(self, plan: SuccessPlan | None, plan_started: datetime | None) -> None:
        """What the customer told us: surveys, their own goals, support experience."""
        self._nps()
        csat = [o.value for o in latest(self.window, SignalKind.csat)]
        if csat:
            self.inputs["csat"] = fmean(csat)
            self.components["csat"] = clip((self.inputs["csat"] - 3) / 2)
        progress = goal_progress(plan, self.window)
        if progress and plan is not None and plan_started is not None:
            # On track against the customer's own goals scores +0.5; a quarter ahead is +1.
            on_track = []
            for goal in plan.goals:
                if goal.key in progress:
                    target = datetime.combine(
                        goal.target_date, datetime.min.time(), self.as_of.tzinfo
                    )
                    expected = _expected_progress(self.as_of, plan_started, target)
                    on_track.append(progress[goal.key] - expected)
            self.inputs["goal_progress_vs_expected"] = fmean(on_track)
            self.components["goal_progress"] = clip(
                0.5 + 2 * self.inputs["goal_progress_vs_expected"]
            )
        fcr = [o.value for o in latest(self.window, SignalKind.fcr)]
        if fcr:
            self.inputs["fcr"] = fmean(fcr)
            # 70 % first-contact resolution is a common industry norm: it is the zero point.
            self.components["support"] = clip((self.inputs["fcr"] - 0.7) / 0.3)

    def _nps(self) -> None:
        answers = latest(self.window, SignalKind.nps)
        # Each contact's latest answer, once: the account's NPS is their net score (the
        # caller passes only the answers of contacts still active at the account).
        by_contact = {o.contact: o.value for o in answers if o.contact}
        if by_contact:
            net = net_promoter_score(list(by_contact.values()))
            self.inputs["net_promoter_score"] = net
            self.inputs["nps_respondents"] = len(by_contact)
            # -100..100 onto the component's -1..1: all promoters +1, all detractors -1,
            # as the mean answer's score below reaches at all 10s and at 4 or less.
            self.components["nps"] = net / 100
        elif answers:
            # Answers for the account as a whole (no contact named): their mean. 7 is the
            # passive middle; promoters (9-10) score high, detractors (0-6) low.
            self.inputs["nps"] = fmean(o.value for o in answers)
            self.components["nps"] = clip((self.inputs["nps"] - 7) / 3)

    def did(self, peers: dict[str, list[float]] | None) -> None:
        """What the account did: usage against its past and its peers, breadth,
        utilisation, revenue movement and support load."""
        change = usage.usage_change(self.series, self.windows)
        if change is not None:
            self.inputs["usage_change"] = change
            self.components["usage_trend"] = clip(change / usage.USAGE_CHANGE_FULL)
        key = self.settings.usage.key_features
        # An account whose product reports no feature at all (active users only) has its
        # feature tracking missing, not every feature unused: breadth and its rank among
        # peers on the key features are not measured.
        features = any(m != ACTIVE_USERS for m in self.series)
        if peers and self.levels and (features or not key):
            # Ranked on its figures as of the peers' day, so the account meets its own
            # entry among them as an exact tie, whatever the hour of the assessment.
            day = usage.peer_day(self.as_of)
            levels = usage.recent_levels(usage.daily_series(self.window, day), self.windows)
            metrics = key or sorted(levels)
            rank = usage.peer_percentile(levels, peers, metrics, self.settings.usage.min_peers)
            if rank is not None:
                self.inputs["usage_percentile"] = rank
                self.components["usage_peers"] = 2 * rank - 1
        if key and features and self.levels:
            self.inputs["breadth"] = usage.breadth(self.levels, key)
            self.components["breadth"] = 2 * self.inputs["breadth"] - 1
        users = self._users()
        if users is not None:
            self._per_user(users)
        self._revenue_movement()

    def _users(self) -> float | None:
        seats = latest(self.window, SignalKind.seats)
        if seats:
            self.inputs["seats"] = seats[-1].value
        if ACTIVE_USERS in self.levels:
            self.inputs["active_users"] = self.levels[ACTIVE_USERS]
            return self.levels[ACTIVE_USERS]
        return seats[-1].value if seats else None

    def _per_user(self, users: float) -> None:
        seats = self.inputs.get("seats")
        if "active_users" in self.inputs and seats:
            self.inputs["utilisation"] = users / seats
            self.components["utilisation"] = usage.utilisation_score(users / seats)
        tickets = [o for o in self.window if o.kind is SignalKind.tickets]
        if tickets and users > 0:
            monthly = per_month(tickets, self.settings.window_days)
            self.inputs["tickets_per_user_month"] = monthly / users
            self.components["support_load"] = usage.support_load_score(monthly / users)

    def _revenue_movement(self) -> None:
        mrr = latest(self.window, SignalKind.mrr)
        if len(mrr) < 2:
            return
        recent_start = self.as_of - timedelta(days=self.settings.usage.recent_days)
        before = [o for o in mrr if o.observed_at <= recent_start]
        first = before[-1] if before else mrr[0]
        if first.value <= 0:
            return
        self.inputs["mrr_change"] = (mrr[-1].value - first.value) / first.value
        self.components["revenue_movement"] = clip(self.inputs["mrr_change"] / MRR_CHANGE_FULL)
