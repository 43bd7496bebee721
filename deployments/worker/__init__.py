"""The job-queue worker process (seed 002): ``python -m deployments.worker.jobs_worker``."""
