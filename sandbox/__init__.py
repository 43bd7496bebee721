"""Local imitations of third-party APIs (with fault knobs) and an SMTP sink."""
