"""HTTP for every provider client: retries with 429 backoff, Retry-After, pacing."""
