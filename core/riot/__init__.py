"""Riot match pipelines (seed 001): job configuration, match rows, analysis."""
