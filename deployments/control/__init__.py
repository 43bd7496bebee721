"""The services every way of operating the jobs shares (the HTTP API, the scripts, a CLI).

``registry`` lists the jobs (their specs live beside their flows), ``catalog`` makes them
operable (the fixed jobs and the ``scheduled_jobs`` rows), ``configs`` keeps their rows in
the config tables (the one source of each schedule) and ``sync`` applies them to Prefect,
``trigger`` starts runs, ``runs`` reads executions, ``overview``, ``alarms`` and ``trends``
what the page shows; ``brand_admin`` and ``scheduled_jobs`` own the rows of seeds 003 and 002,
``brands`` the brands themselves (with topics, queries, competitors and their schedule),
``families`` the profile queue, the quota ledger and the tracked Riot players.
"""
