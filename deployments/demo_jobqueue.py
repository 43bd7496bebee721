"""Moved to ``deployments.dev.demo_jobqueue``: ``python -m deployments.dev.demo_jobqueue`` (this path still runs it)."""

import runpy
import sys

if __name__ == "__main__":
    print("deployments.demo_jobqueue moved to deployments.dev.demo_jobqueue: run `python -m deployments.dev.demo_jobqueue`", file=sys.stderr)
    runpy.run_module("deployments.dev.demo_jobqueue", run_name="__main__", alter_sys=True)
