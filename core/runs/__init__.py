"""What every run reports: JobResult, the history row, the per-item error shape."""
