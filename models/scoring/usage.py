"""Usage as daily rates: the account's own level over time, its peers, breadth,
utilisation and support load (models/signals.py says what a usage signal holds).

Every usage signal covers a span of time at a daily rate: a count's rate is its value
over its period's days (so a 28-day February and a 31-day March of the same daily rate
read the same), a level's (`active_users`, or a signal without a period, which stands
for its day) is its value. Days are counted back from `as_of`: day 0 ends at `as_of`.

A day the account reported nothing for a metric it does report counts as zero, but only
inside its reporting span: from its first reported day to its last, extended to the
present by one of its typical periods. A daily reporter that falls silent is using
nothing; a monthly reporter whose month is not over is not yet known. Each metric has
its own period: beside weekly metrics, a monthly one is not read as zero while its
month's report is still to come, and is read on its latest reported days until it comes.

A window's level is the median of its weekly rates: one quiet (or one busy) week in four
moves it little.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median

from models.signals import ACTIVE_USERS, Observation, SignalKind

DAY = timedelta(days=1)
WEEK = 7
USAGE_CHANGE_FULL = 0.5  # a rise (or fall) of 50 % on the account's own level scores ±1
UTILISATION_NEUTRAL, UTILISATION_SPAN = 0.5, 0.4  # half the seats in use is neutral
TICKETS_NEUTRAL, TICKETS_SPAN = 0.1, 0.2  # tickets per active user per 30 days


def clip(value: float) -> float:
    return max(-1.0, min(1.0, value))


@dataclass(frozen=True)
class Span:
    """A stretch of time at one daily rate, in days before `as_of` (newest < oldest)."""

    newest: float
    oldest: float
    rate: float


@dataclass
class DailySeries:
    """One metric of one account: the spans its reports cover, at their daily rates."""

    spans: list[Span] = field(default_factory=list)
    # Days before as_of that its newest report ends, and its typical period (None for a
    # metric read as levels at moments).
    latest: float = math.inf
    period: float | None = None

    def awaited(self) -> bool:
        """Its next report is still to come, or a little late (within one more period).
        A metric silent for longer has stopped."""
        return self.period is not None and self.latest < 2 * self.period

    def recent(self, days: int) -> tuple[float, float | None]:
        """Where its windows start, in days before as_of, and its level over the recent
        window from there. They start now, unless no report covers the recent window yet
        because the next is awaited (a monthly report on the last days of its month):
        then where its newest report ends, so the metric is read on the latest days it is
        known for instead of dropping out until its report comes."""
        level = self.level(0, days)
        if level is None and self.awaited():
            return self.latest, self.level(self.latest, days)
        return 0.0, level

    def level(self, first_day: float, days: int) -> float | None:
        """Median weekly rate over days [first_day, first_day + days), or None if no
        week in it was reported on."""
        weekly: list[float] = []
        last = first_day + days
        for week in range(math.ceil(days / WEEK)):
            start = first_day + week * WEEK
            end = min(start + WEEK, last)
            amount = cover = 0.0
            for s in self.spans:
                overlap = min(end, s.oldest) - max(start, s.newest)
                if overlap > 0:
                    amount += s.rate * overlap
                    cover += overlap
            # At least a day's worth of report in the week. Spans are differences of
            # moments in days, so a day exactly can sum to a hair under 1.0: close enough
            # counts, or the same reports would count or not by rounding.
            if cover >= 1.0 or math.isclose(cover, 1.0):
                weekly.append(amount / cover)
        return median(weekly) if weekly else None


def _day_index(as_of: datetime, moment: datetime) -> float:
    """Days before as_of (fractional)."""
    return (as_of - moment).total_seconds() / 86_400


def _span(o: Observation, as_of: datetime) -> Span:
    if o.period_start is None:  # a level read at one moment: it stands for its day
        day = max(0, math.floor(_day_index(as_of, o.observed_at)))
        return Span(day, day + 1, o.value)
    newest = _day_index(as_of, o.observed_at)
    oldest = _day_index(as_of, o.period_start)
    is_level = o.metric_name == ACTIVE_USERS
    return Span(newest, oldest, o.value if is_level else o.value / (oldest - newest))


def _gaps(spans: list[Span], newest: float, oldest: float) -> list[Span]:
    """Zero-rate spans for the stretches of [newest, oldest] no report covers."""
    gaps, at = [], newest
    for s in sorted(spans, key=lambda s: s.newest):
        if s.newest > at:
            gaps.append(Span(at, min(s.newest, oldest), 0.0))
        at = max(at, s.oldest)
        if at >= oldest:
            break
    if at < oldest:
        gaps.append(Span(at, oldest, 0.0))
    return gaps


def daily_series(observations: list[Observation], as_of: datetime) -> dict[str, DailySeries]:
    """Per metric, the account's daily usage up to as_of, with unreported stretches
    inside its reporting span read as zero."""
    usage = [o for o in observations if o.kind is SignalKind.usage and o.observed_at <= as_of]
    series: dict[str, DailySeries] = defaultdict(DailySeries)
    for o in usage:
        series[o.metric_name].spans.append(_span(o, as_of))
    periods: dict[str, list[float]] = defaultdict(list)
    for o in usage:
        if o.period_days is not None:
            periods[o.metric_name].append(o.period_days)
    for m, found in periods.items():
        metric = series[m]
        # Zero from its own first report on: a metric reported only lately (a feature
        # just tracked, a misspelt name) has no earlier level, where zeros before it
        # would read as growth from nothing.
        oldest = max(s.oldest for s in metric.spans)
        # Unknown, not zero: the days since its last report, up to one of its periods.
        metric.latest = min(s.newest for s in metric.spans)
        metric.period = median(found)
        newest = min(metric.latest, math.ceil(metric.period))
        metric.spans += _gaps(metric.spans, newest, oldest)
    return dict(series)


@dataclass(frozen=True)
class Windows:
    recent_days: int
    baseline_days: int


def recent_levels(series: dict[str, DailySeries], windows: Windows) -> dict[str, float]:
    """Per metric, the daily rate over the recent window (metrics with a report in it)."""
    levels = {m: s.recent(windows.recent_days)[1] for m, s in series.items()}
    return {m: v for m, v in levels.items() if v is not None}


def usage_change(series: dict[str, DailySeries], windows: Windows) -> float | None:
    """Mean over metrics of the recent level's change against the earlier window's
    (a rise capped at +100 %); None when no metric was measured in both."""
    changes: list[float] = []
    for s in series.values():
        start, recent = s.recent(windows.recent_days)
        before = s.level(start + windows.recent_days, windows.baseline_days)
        if recent is None or before is None:
            continue
        if before > 0:
            changes.append(min(1.0, (recent - before) / before))
        elif recent > 0:
            changes.append(1.0)  # from nothing to something
    return sum(changes) / len(changes) if changes else None


def percentile(value: float, peers: list[float]) -> float:
    """Share of peers below the value, ties counting half (mid-rank), in [0, 1]; the
    peers' rates are sorted."""
    below = bisect_left(peers, value)
    equal = bisect_right(peers, value) - below
    return (below + 0.5 * equal) / len(peers)


def peer_percentile(
    levels: dict[str, float], peers: dict[str, list[float]], metrics: list[str], min_peers: int
) -> float | None:
    """Mean percentile of the account's recent daily rate among the peers', over the
    metrics (a metric the account did not use counts as a zero rate)."""
    ranks = [
        percentile(levels.get(m, 0.0), peers[m])
        for m in metrics
        if len(peers.get(m, [])) >= min_peers
    ]
    return sum(ranks) / len(ranks) if ranks else None


def breadth(levels: dict[str, float], key_features: list[str]) -> float:
    """Share of the key features used (a rate above zero) in the recent window."""
    return sum(levels.get(f, 0.0) > 0 for f in key_features) / len(key_features)


def utilisation_score(ratio: float) -> float:
    return clip((ratio - UTILISATION_NEUTRAL) / UTILISATION_SPAN)


def support_load_score(tickets_per_user_month: float) -> float:
    return clip((TICKETS_NEUTRAL - tickets_per_user_month) / TICKETS_SPAN)


# Peers are read a little before the recent window: a monthly report that ends inside it
# starts before it, and each account's reporting span needs its neighbouring reports.
PEER_MARGIN_DAYS = 31


def peer_day(as_of: datetime) -> datetime:
    """Peers are read as of the start of the assessment's day: every account assessed
    that day is ranked among the same figures (and a backtest reads them once a day)."""
    return as_of.replace(hour=0, minute=0, second=0, microsecond=0)


def peer_levels(
    accounts: list[list[Observation]], as_of: datetime, windows: Windows
) -> dict[str, list[float]]:
    """Per metric, the recent daily rates of the accounts given (those on the same plan,
    assessed in the same period), sorted: what `usage_peers` ranks an account among."""
    peers: dict[str, list[float]] = defaultdict(list)
    for observations in accounts:
        for metric, level in recent_levels(daily_series(observations, as_of), windows).items():
            peers[metric].append(level)
    return {m: sorted(v) for m, v in peers.items()}
