"""The ``podium`` command's entry point.

``podium serve`` skips Typer: a gateway's start-to-ready time is measured (and restarts are part of
deploys), and importing Typer, Click and Rich costs ~150 ms that the server never uses. Its options
are the Typer command's, parsed by argparse; ``podium serve --help`` and any option argparse does not
know go through Typer, which owns the help text and the error messages.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def quiet_pool_logs() -> None:
    """psycopg_pool logs every failed connection attempt (logger ``psycopg.pool``, a warning each,
    ~170 lines while a pool waits 30 s): the command's one line (``StoreUnavailableError``) says it."""
    pool_log = logging.getLogger("psycopg.pool")
    if not any(isinstance(h, logging.NullHandler) for h in pool_log.handlers):
        pool_log.addHandler(logging.NullHandler())
    pool_log.propagate = False


def _serve(argv: list[str]) -> int | None:
    parser = argparse.ArgumentParser(prog="podium serve", add_help=False)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--no-auth", action="store_true")
    parser.add_argument("--log-level", default="info")
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
        run_serve(host=args.host, port=args.port, no_auth=args.no_auth, config=args.config, log_level=args.log_level)
    except (PodiumError, KeyboardInterrupt) as exc:
        return report(exc)
    return 0


# A gateway computes small matrices per request (a prompt's MiniLM embedding for the learned router or
# the semantic cache): BLAS's one-thread-per-core pool only adds hand-offs there and fights the event loop
# and llama.cpp for the cores (measured: 172 ms per embedding instead of 15 ms on a busy two-core machine).
# Set before numpy is first imported; an operator's own setting wins.
_ONE_BLAS_THREAD = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # not OMP_*: llama.cpp sizes its own pool


def main() -> None:
    argv = sys.argv[1:]
    quiet_pool_logs()
    if argv[:1] == ["serve"] and not {"--help", "-h"} & set(argv):
        for name in _ONE_BLAS_THREAD:
            os.environ.setdefault(name, "1")
        code = _serve(argv[1:])
        if code is not None:
            sys.exit(code)
    from podium.cli.app import app

    app()
