"""Brand visibility in AI answers (seed 003): scoring of collected answers."""
