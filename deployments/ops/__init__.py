"""The operations API (issue 11): every job of the five families, one FastAPI app.

``catalog`` knows the jobs, ``configs`` their rows in the config tables (the one source of
each schedule) and how they reach Prefect, ``runs`` their executions, ``overview`` and
``trends`` what the page shows; ``routes_*`` are the HTTP routes, composed in
``deployments.admin_api.create_app``.
"""
