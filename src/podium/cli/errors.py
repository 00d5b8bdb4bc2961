"""How a CLI user sees a failure: one clear line, never a traceback.

Exit codes: 2 for what the user can fix (bad config, bad request, unknown model, missing
package), 1 for failures elsewhere (a provider down, a timeout), 130 for Ctrl-C.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from podium import errors

        try:
            return func(*args, **kwargs)
        except errors.PodiumError as exc:
            user_fixable = isinstance(exc, errors.ConfigError | errors.BadRequestError | errors.NotFoundError
                                      | errors.AuthenticationError | errors.PermissionDeniedError
                                      | errors.BudgetExceededError)
            sys.stderr.write(f"error: {exc.message}\n")
            raise typer.Exit(2 if user_fixable else 1) from None
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            raise typer.Exit(130) from None

    return wrapper
