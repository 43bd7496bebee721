"""Moved to ``deployments.dev.demo``: ``python -m deployments.dev.demo`` (this path still runs it)."""

import runpy
import sys

if __name__ == "__main__":
    print("deployments.demo moved to deployments.dev.demo: run `python -m deployments.dev.demo`", file=sys.stderr)
    runpy.run_module("deployments.dev.demo", run_name="__main__", alter_sys=True)
