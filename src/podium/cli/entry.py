"""The ``podium`` command's entry point.

``podium serve`` skips Typer: a gateway's start-to-ready time is measured (and restarts are part of
deploys), and importing Typer, Click and Rich costs ~150 ms that the server never uses. Its options
are the Typer command's, parsed by argparse; ``podium serve --help`` and any option argparse does not
know go through Typer, which owns the help text and the error messages.
"""

from __future__ import annotations

import argparse
import os
import sys


def _serve(argv: list[str]) -> int | None:
    parser = argparse.ArgumentParser(prog="podium serve", add_help=False)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--no-auth", action="store_true")
    parser.add_argument("--config", "-c", default=os.environ.get("PODIUM_CONFIG"))
    try:
        args, unknown = parser.parse_known_args(argv)
    except SystemExit:  # a malformed value: let Typer explain it
        return None
    if unknown:
        return None
    from podium.cli.errors import report
    from podium.cli.serve import run_serve
    from podium.errors import PodiumError

    try:
        run_serve(host=args.host, port=args.port, no_auth=args.no_auth, config=args.config)
    except (PodiumError, KeyboardInterrupt) as exc:
        return report(exc)
    return 0


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["serve"] and not {"--help", "-h"} & set(argv):
        code = _serve(argv[1:])
        if code is not None:
            sys.exit(code)
    from podium.cli.app import app

    app()
