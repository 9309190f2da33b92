"""Cohort simulation and backtesting: synthetic customers run through the real lifecycles
on the time-skipping server (`tandem simulate`), and recorded signals re-scored under a
changed plan (`tandem backtest`)."""
