"""Notebook DataFrames (being written)."""
