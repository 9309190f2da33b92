"""`tandem`: the command line of success teams and operators.

One module per command group: `customers` (the success team's work on accounts), `tasks`
(the human work inside lifecycles), `simulate` (cohorts and backtests), `admin` (plan
templates, tokens, migrations, email previews, the codec server), `staff` (the team's
people, and `assign`), `sources` (write keys for product events), `contacts` (the people
at an account), `imports` (existing accounts from a file), `running` (`run` and
`worker`); `common` holds what they share."""

from __future__ import annotations

import os
import sys

import typer

from cli import (
    admin,
    contacts,
    customers,
    digests,
    imports,
    running,
    scoring,
    simulate,
    sources,
    staff,
    tasks,
    webhooks,
)

app = typer.Typer(
    help="Tandem: onboarding and success-plan lifecycles on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Each group's commands sit at the top level (`tandem signup`, `tandem tasks`, ...);
# the admin module brings its own named groups (`tandem plans list`, `tandem db upgrade`).
for group in (
    running,
    customers,
    tasks,
    simulate,
    scoring,
    admin,
    webhooks,
    digests,
    staff,
    sources,
    contacts,
    imports,
):
    app.add_typer(group.app)


def main() -> None:
    """The console script. Temporal's client keeps native threads that can crash the
    interpreter's shutdown (temporalio/sdk-python#300, seen here as SIGABRT under load),
    so a finished command flushes its output and leaves without finalisation."""
    code = 0
    try:
        app()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
