"""python -m sandbox rapidapi|coingecko|collectors|riot|smtp|all: run sandboxes in the foreground.

``all`` starts every provider's sandbox in one process, each on its usual port (a free one
when that is taken), and prints the environment that points the product at them; with
``--state-file`` it also writes them as JSON (``jobpipes up`` reads it)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import threading
from pathlib import Path
from typing import Any


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
    col = sub.add_parser("collectors", help="the OpenAI Responses, Perplexity and SerpAPI imitation")
    col.add_argument("--host", default="127.0.0.1")
    col.add_argument("--port", type=int, default=8083)
    riot = sub.add_parser("riot", help="the Riot Games API imitation (account, summoner, league, match)")
    riot.add_argument("--host", default="127.0.0.1")
    riot.add_argument("--port", type=int, default=8084)
    every = sub.add_parser("all", help="every provider's sandbox (and the SMTP sink) in one process")
    every.add_argument("--host", default="127.0.0.1")
    every.add_argument("--state-file", default=None, help="write the URLs and environment here as JSON")
    every.add_argument("--no-smtp", action="store_true", help="leave the SMTP sink out")
    smtp = sub.add_parser("smtp", help="an SMTP sink that prints each subject")
    smtp.add_argument("--host", default="127.0.0.1")
    smtp.add_argument("--port", type=int, default=8025)
    smtp.add_argument("--auth-required", action="store_true", help="refuse mail before AUTH")
    return parser


# Each sandbox's usual port, the app factory and the environment that points the product at it.
PORTS = {"rapidapi": 8081, "coingecko": 8082, "collectors": 8083, "riot": 8084}


def _app(which: str) -> Any:
    if which == "rapidapi":
        from sandbox.rapidapi import RapidApiSandbox, create_app
        return create_app(RapidApiSandbox())
    if which == "coingecko":
        from sandbox.coingecko import CoinGeckoSandbox
        from sandbox.coingecko import create_app as coingecko_app
        return coingecko_app(CoinGeckoSandbox())
    if which == "collectors":
        from sandbox.collectors import CollectorsSandbox
        from sandbox.collectors import create_app as collectors_app
        return collectors_app(CollectorsSandbox())
    from sandbox.riot import RiotSandbox
    from sandbox.riot import create_app as riot_app
    return riot_app(RiotSandbox())


def environment(urls: dict[str, str]) -> dict[str, str]:
    """The settings (environment variables) that point the product at the sandboxes of ``urls``."""
    env: dict[str, str] = {}
    if "rapidapi" in urls:
        env |= {"RAPIDAPI_BASE_URL": urls["rapidapi"], "RAPIDAPI_KEY": "sandbox-key"}
    if "coingecko" in urls:
        # The sandbox has no per-minute limit unless asked: let the jobs go at 600/min.
        env |= {"COINGECKO_BASE_URL": urls["coingecko"] + "/api/v3", "COINGECKO_CALLS_PER_MINUTE": "600"}
    if "collectors" in urls:
        env |= {"OPENAI_BASE_URL": urls["collectors"], "PERPLEXITY_BASE_URL": urls["collectors"],
                "SERPAPI_BASE_URL": urls["collectors"], "OPENAI_API_KEY": "sk-sandbox",
                "PERPLEXITY_API_KEY": "pplx-sandbox", "SERPAPI_API_KEY": "serp-sandbox"}
    if "riot" in urls:
        env |= {"RIOT_BASE_URL_TEMPLATE": urls["riot"] + "/{route}", "RIOT_API_KEY": "RGAPI-sandbox"}
    if "smtp" in urls:
        host, _, port = urls["smtp"].removeprefix("smtp://").rpartition(":")
        env |= {"SMTP_HOST": host, "SMTP_PORT": port}
    return env


def _serve_all(host: str, state_file: str | None, smtp: bool) -> None:
    from sandbox.server import RunningServer

    servers: list[RunningServer] = []
    urls: dict[str, str] = {}
    for which, port in PORTS.items():
        try:
            server = RunningServer(_app(which), host=host, port=port).start()
        except OSError:  # the usual port is taken: any free one
            server = RunningServer(_app(which), host=host, port=0).start()
        servers.append(server)
        urls[which] = server.url
    sink = None
    if smtp:
        from sandbox.smtp import start_smtp_sink

        for port in (8025, 0):
            try:
                sink = start_smtp_sink(host, port, on_message=lambda m: print(f"mail {m['To']}: {m['Subject']}",
                                                                               flush=True))
                break
            except OSError:
                continue
        if sink is not None:
            urls["smtp"] = f"smtp://{host}:{sink.port}"
    env = environment(urls)
    for which, url in urls.items():
        print(f"{which:<11} {url}", flush=True)
    print("environment:\n" + "\n".join(f"  export {k}={shlex.quote(v)}" for k, v in env.items()), flush=True)
    if state_file:
        tmp = Path(state_file).with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "urls": urls, "env": env}, indent=2))
        tmp.replace(state_file)  # readers see the whole file or none
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop(timeout=2)
        if sink is not None:
            sink.stop()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.which == "all":
        _serve_all(args.host, args.state_file, smtp=not args.no_smtp)
        return
    if args.which in ("collectors", "riot"):
        import uvicorn

        print(f"{args.which} sandbox on http://{args.host}:{args.port}", flush=True)
        print("environment:\n" + "\n".join(
            f"  export {k}={shlex.quote(v)}" for k, v in
            environment({args.which: f"http://{args.host}:{args.port}"}).items()), flush=True)
        uvicorn.run(_app(args.which), host=args.host, port=args.port, log_level="warning", access_log=False)
        return
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
