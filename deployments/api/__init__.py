"""The operations API and page: one FastAPI app (``app``) over ``deployments.control``;
``routes_*`` are its HTTP routes, ``auth`` the bearer token, ``web/`` the static page."""
