"""One httpx client per third-party provider."""
