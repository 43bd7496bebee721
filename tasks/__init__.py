"""Retryable Prefect tasks shared by every job: quota, entries, fetch batches, history, notify."""
