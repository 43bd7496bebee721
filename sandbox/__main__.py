"""python -m sandbox rapidapi|coingecko|smtp: run a sandbox in the foreground."""

from __future__ import annotations

import argparse
import threading


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    sub = parser.add_subparsers(dest="which", required=True)
    api = sub.add_parser("rapidapi", help="the RapidAPI LinkedIn imitation")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8081)
    api.add_argument("--latency-ms", type=float, default=0)
    api.add_argument("--per-second-limit", type=int, default=0, help="0 = no per-second limit")
    api.add_argument("--retry-after-seconds", type=float, default=None,
                     help="send Retry-After on 429s (default: none)")
    api.add_argument("--monthly-limit", type=int, default=100_000)
    api.add_argument("--api-key", default="sandbox-key")
    cg = sub.add_parser("coingecko", help="the CoinGecko v3 imitation (markets, simple price, coin details)")
    cg.add_argument("--host", default="127.0.0.1")
    cg.add_argument("--port", type=int, default=8082)
    cg.add_argument("--per-minute-limit", type=int, default=0, help="0 = no per-minute limit")
    smtp = sub.add_parser("smtp", help="an SMTP sink that prints each subject")
    smtp.add_argument("--host", default="127.0.0.1")
    smtp.add_argument("--port", type=int, default=8025)
    smtp.add_argument("--auth-required", action="store_true", help="refuse mail before AUTH")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.which == "coingecko":
        import uvicorn

        from sandbox.coingecko import CoinGeckoKnobs, CoinGeckoSandbox
        from sandbox.coingecko import create_app as coingecko_app

        print(f"CoinGecko sandbox on http://{args.host}:{args.port}/api/v3", flush=True)
        uvicorn.run(coingecko_app(CoinGeckoSandbox(CoinGeckoKnobs(per_minute_limit=args.per_minute_limit))),
                    host=args.host, port=args.port, log_level="warning", access_log=False)
        return
    if args.which == "rapidapi":
        import uvicorn

        from sandbox.rapidapi import RapidApiKnobs, RapidApiSandbox, create_app

        knobs = RapidApiKnobs(latency_ms=args.latency_ms, per_second_limit=args.per_second_limit,
                              retry_after_seconds=args.retry_after_seconds,
                              monthly_limit=args.monthly_limit, api_key=args.api_key)
        print(f"RapidAPI sandbox on http://{args.host}:{args.port}", flush=True)
        uvicorn.run(create_app(RapidApiSandbox(knobs)), host=args.host, port=args.port,
                    log_level="warning", access_log=False)
        return

    from sandbox.smtp import start_smtp_sink

    sink = start_smtp_sink(args.host, args.port, auth_required=args.auth_required,
                           on_message=lambda m: print(f"{m['To']}: {m['Subject']}", flush=True))
    print(f"SMTP sink on {args.host}:{args.port}", flush=True)
    try:
        threading.Event().wait()  # the sink serves from its own thread
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
