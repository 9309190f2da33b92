"""Usage as daily rates: the account's own level over time, its peers, breadth,
utilisation and support load (models/signals.py says what a usage signal holds).

Every usage signal is spread over the days its period covers: a count adds value /
period days to each day (so a 28-day February and a 31-day March of the same daily
rate read the same), a level (`active_users`, or a signal without a period) adds its
value to each day. Days are counted back from `as_of`: day 0 ends at `as_of`.

A day the account reported nothing for a metric it does report counts as zero, but only
inside its reporting span: from its first reported day to its last, extended to the
present by one typical period. A daily reporter that falls silent is using nothing; a
monthly reporter whose month is not over is not yet known.

A window's level is the median of its weekly rates: one quiet (or one busy) week in four
moves it little.
"""

from __future__ import annotations

import math
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


@dataclass
class DailySeries:
    """One metric of one account: per day index, the amount used and the share of the
    day covered by a report."""

    amount: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    cover: dict[int, float] = field(default_factory=lambda: defaultdict(float))

    def level(self, first_day: int, days: int) -> float | None:
        """Median weekly rate over days [first_day, first_day + days), or None if no
        week in it was reported on."""
        weekly: list[float] = []
        for start in range(first_day, first_day + days, WEEK):
            week = range(start, min(start + WEEK, first_day + days))
            cover = sum(min(1.0, self.cover.get(d, 0.0)) for d in week)
            if cover >= 1.0:  # at least a day's worth of report in the week
                weekly.append(sum(self.amount.get(d, 0.0) for d in week) / cover)
        return median(weekly) if weekly else None


def _day_index(as_of: datetime, moment: datetime) -> float:
    """Days before as_of (fractional)."""
    return (as_of - moment).total_seconds() / 86_400


def _spread(series: DailySeries, o: Observation, as_of: datetime) -> None:
    is_level = o.metric_name == ACTIVE_USERS or o.period_start is None
    if o.period_start is None:  # a level read at one moment: it stands for its day
        day = max(0, math.floor(_day_index(as_of, o.observed_at)))
        series.amount[day] += o.value
        series.cover[day] += 1.0
        return
    newest = _day_index(as_of, o.observed_at)
    oldest = _day_index(as_of, o.period_start)
    total = oldest - newest
    day = max(0, math.floor(newest))
    while day < oldest:
        overlap = min(oldest, day + 1) - max(newest, day)
        if overlap > 0:
            rate = o.value if is_level else o.value / total
            series.amount[day] += rate * overlap
            series.cover[day] += overlap
        day += 1


def daily_series(observations: list[Observation], as_of: datetime) -> dict[str, DailySeries]:
    """Per metric, the account's daily usage up to as_of, with unreported days inside
    its reporting span filled as zero."""
    usage = [o for o in observations if o.kind is SignalKind.usage and o.observed_at <= as_of]
    series: dict[str, DailySeries] = defaultdict(DailySeries)
    for o in usage:
        _spread(series[o.metric_name], o, as_of)
    periodic = {o.metric_name: o.period_days for o in usage if o.period_days is not None}
    if periodic:
        covered = [d for m in periodic for d, c in series[m].cover.items() if c > 0]
        typical = median(o.period_days for o in usage if o.period_days is not None)
        newest = min(min(covered), math.ceil(typical))
        oldest = max(covered)
        for s in (series[m] for m in periodic):
            for d in range(newest, oldest + 1):
                if s.cover.get(d, 0.0) == 0.0:
                    s.cover[d] = 1.0  # reported nothing that day: used nothing
    return dict(series)


@dataclass(frozen=True)
class Windows:
    recent_days: int
    baseline_days: int


def recent_levels(series: dict[str, DailySeries], windows: Windows) -> dict[str, float]:
    """Per metric, the daily rate over the recent window (metrics with a report in it)."""
    levels = {m: s.level(0, windows.recent_days) for m, s in series.items()}
    return {m: v for m, v in levels.items() if v is not None}


def usage_change(series: dict[str, DailySeries], windows: Windows) -> float | None:
    """Mean over metrics of the recent level's change against the earlier window's
    (a rise capped at +100 %); None when no metric was measured in both."""
    changes: list[float] = []
    for s in series.values():
        recent = s.level(0, windows.recent_days)
        before = s.level(windows.recent_days, windows.baseline_days)
        if recent is None or before is None:
            continue
        if before > 0:
            changes.append(min(1.0, (recent - before) / before))
        elif recent > 0:
            changes.append(1.0)  # from nothing to something
    return sum(changes) / len(changes) if changes else None


def percentile(value: float, peers: list[float]) -> float:
    """Share of peers below the value, ties counting half (mid-rank), in [0, 1]."""
    below = sum(p < value for p in peers)
    equal = sum(p == value for p in peers)
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
