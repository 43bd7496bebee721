"""Moved to ``deployments.dev.local_server``: ``python -m deployments.dev.local_server`` (this path still runs it)."""

import runpy
import sys

if __name__ == "__main__":
    print("deployments.local_server moved to deployments.dev.local_server: run `python -m deployments.dev.local_server`", file=sys.stderr)
    runpy.run_module("deployments.dev.local_server", run_name="__main__", alter_sys=True)
