"""Benchmarks: each measures Tandem and a bare Temporal baseline in the same run, on the
same server with the same worker settings, and reports the ratio. `python -m bench`."""
