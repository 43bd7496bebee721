"""Moved to ``deployments.worker.jobs_worker``: ``python -m deployments.worker.jobs_worker`` (this path still runs it)."""

import runpy
import sys

if __name__ == "__main__":
    print("deployments.jobs_worker moved to deployments.worker.jobs_worker: run `python -m deployments.worker.jobs_worker`", file=sys.stderr)
    runpy.run_module("deployments.worker.jobs_worker", run_name="__main__", alter_sys=True)
