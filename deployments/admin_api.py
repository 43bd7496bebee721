"""Moved: the operations API is ``deployments.api.app`` (``uvicorn deployments.api.app:app``).

This path keeps ``uvicorn deployments.admin_api:app`` working and says where it went."""

import sys

from deployments.api.app import app, create_app

print("deployments.admin_api moved to deployments.api.app: run `uvicorn deployments.api.app:app`",
      file=sys.stderr)
__all__ = ["app", "create_app"]
