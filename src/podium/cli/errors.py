"""How a CLI user sees a failure: one clear line, never a traceback.

Exit codes: 2 for what the user can fix (bad config, bad request, unknown model, missing
package, a ledger, key store or Redis the config points at that cannot be reached), 1 for failures
elsewhere (a provider down, a timeout), 130 for Ctrl-C.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def exit_code(exc: BaseException) -> int:
    """2 for what the user can fix, 1 for failures elsewhere, 130 for Ctrl-C."""
    from podium import errors

    if isinstance(exc, KeyboardInterrupt):
        return 130
    user_fixable = isinstance(exc, errors.ConfigError | errors.BadRequestError | errors.NotFoundError
                              | errors.AuthenticationError | errors.PermissionDeniedError
                              | errors.BudgetExceededError | errors.StoreUnavailableError)
    return 2 if user_fixable else 1


def report(exc: BaseException) -> int:
    """Print the one line a user sees and return the exit code."""
    from podium import errors

    sys.stderr.write("interrupted\n" if isinstance(exc, KeyboardInterrupt) else
                     f"error: {exc.message if isinstance(exc, errors.PodiumError) else exc}\n")
    return exit_code(exc)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import typer

        from podium import errors

        try:
            return func(*args, **kwargs)
        except (errors.PodiumError, KeyboardInterrupt) as exc:
            raise typer.Exit(report(exc)) from None

    return wrapper
