"""Crypto market data (seed 004): tables, repository, CoinGecko client, payload mapping."""
