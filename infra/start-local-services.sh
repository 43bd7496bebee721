#!/usr/bin/env bash
# Start the production-like components as plain processes (no Docker): Prefect server,
# a moto S3 server standing in for MinIO, an SMTP sink and the RapidAPI sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data/logs
uv run prefect server start --host 127.0.0.1 --port 4200 > .data/logs/prefect.log 2>&1 &
uv run moto_server -H 127.0.0.1 -p 9000 > .data/logs/moto.log 2>&1 &
uv run python -m sandbox smtp --port 8025 > .data/logs/smtp.log 2>&1 &
uv run python -m sandbox rapidapi --port 8081 > .data/logs/sandbox.log 2>&1 &
echo "Prefect UI http://127.0.0.1:4200  S3 http://127.0.0.1:9000  SMTP 127.0.0.1:8025  API http://127.0.0.1:8081"
echo "export PREFECT_API_URL=http://127.0.0.1:4200/api AWS_ENDPOINT_URL=http://127.0.0.1:9000 SMTP_HOST=127.0.0.1 SMTP_PORT=8025"
