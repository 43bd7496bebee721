"""Prefect flows, one module per job: orchestration only."""
