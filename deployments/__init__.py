"""What a person runs, one folder per process (README "Architecture"):

- ``deploy`` / ``serve``: apply the config tables to ``prefect deploy``'s deployments, or serve
  every job from one process;
- ``api/``: the operations API and page (``uvicorn deployments.api.app:app``);
- ``worker/``: the job-queue worker (``python -m deployments.worker.jobs_worker``);
- ``dev/``: ``make demo`` and the long-lived local Prefect server;
- ``control/``: the services all of them share (the job registry, configs, schedules,
  triggers, runs, overview, alarms).

The old module paths (``deployments.admin_api``, ``deployments.local_server``, ...) still run
and print where they went.
"""
