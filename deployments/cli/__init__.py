"""The ``jobpipes`` command: every job of the registry from a terminal, over the same control
layer as the operations API (``deployments.control``), so both always agree.

    uv run jobpipes up | status | down        the local stack: Prefect server, sandboxes, serve, API + page
    eval "$(uv run jobpipes env)"             point a shell or notebook at the running stack
    uv run jobpipes jobs                      the overview: schedule, next run, last status, 24 h
    uv run jobpipes run JOB --param limit=5   start a run, follow it, print its JobResult
    uv run jobpipes history JOB               its runs, newest first
    uv run jobpipes config JOB --schedule "*/30 * * * *" --set limit=50
    uv run jobpipes profiles add URN... | list | requeue-failed;  quota show | reset
    uv run jobpipes riot track NAME#TAG PLATFORM | players
    uv run jobpipes brands add NAME --customer ID ... | list | show ID | schedule ID --cron ...
    uv run jobpipes queue list | show ID | cancel ID | retry ID   the job queue's jobs (seed 002)
    uv run jobpipes new-job NAME --family F   scaffold a job: spec, flow, task, test

Read commands take ``--json``. Bad input is one line naming what was wrong, exit code 2.
It talks to the Prefect API of ``PREFECT_API_URL`` and the app database of the settings,
like the flows; while ``jobpipes up``'s stack runs, to that stack (a variable set wins).
"""


def main() -> None:
    """The console script: take the running stack's environment, then import the commands.

    In this order on purpose: Prefect reads ``PREFECT_API_URL`` when it is imported, so the
    stack's server must be in the environment before ``deployments.cli.main`` imports it."""
    from deployments.dev.stack import adopt_environment

    adopt_environment()
    from deployments.cli.main import app

    app()
