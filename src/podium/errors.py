"""Every error Podium raises, in one tree.

Callers catch by meaning, not by vendor: an Anthropic 529 and an OpenAI 503 are both
``ProviderUnavailableError``. Each class carries the HTTP status and the OpenAI-style error
``type`` the gateway answers with, and whether a retry on another attempt could help, so the
resilience layer never has to look at strings.

    PodiumError                         500  api_error
    ├── ConfigError                     500  invalid_config          bad or inconsistent podium.yaml
    │   └── DependencyMissingError      500  invalid_config          optional package not installed
    ├── BadRequestError                 400  invalid_request_error   the request itself is wrong
    │   ├── ContextTooLongError         400  invalid_request_error   prompt does not fit the window
    │   └── ContentFilteredError        400  invalid_request_error   the provider refused the content
    ├── AuthenticationError             401  authentication_error    missing or wrong key
    ├── PermissionDeniedError           403  permission_error        key lacks the scope
    ├── NotFoundError                   404  not_found_error         unknown model / provider / request
    ├── RateLimitedError                429  rate_limit_error        upstream limit; retry_after when known
    ├── PolicyError                     403  permission_error        the request's own policy refuses a call
    │   ├── ScopeError                  403  permission_error        the key may not use this model
    │   ├── RegionError                 403  permission_error        the data may not go to this region
    │   ├── BudgetExceededError         429  insufficient_quota      spending cap reached
    │   └── LimitExceededError          429  rate_limit_error        the key's or team's RPM/TPM; retry_after
    ├── StoreUnavailableError           503  service_unavailable     ledger or key store unreachable
    ├── TimeoutError                    504  timeout                 no answer in time     (retryable)
    └── ProviderError                   502  api_error               upstream failed
        └── ProviderUnavailableError    503  service_unavailable     down, overloaded      (retryable)

A ``PolicyError`` is never retried, never opens a circuit and never fails over to another deployment
of the same model: it is the caller's own limit (``podium.policy``), not the provider's health.

Messages never contain secrets: providers pass vendor messages through ``redact`` first.
"""

from __future__ import annotations

import re
from typing import ClassVar


class PodiumError(Exception):
    """Root of the tree; also what an unknown failure becomes at the gateway."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.code = code

    def to_openai(self) -> dict[str, object]:
        """The body an OpenAI client expects: ``{"error": {message, type, param, code}}``."""
        return {"error": {"message": self.message, "type": self.error_type, "param": None, "code": self.code}}


class ConfigError(PodiumError):
    error_type = "invalid_config"

    def __init__(self, message: str, *, key_path: str | None = None) -> None:
        text = f"{key_path}: {message}" if key_path else message
        super().__init__(text, code="invalid_config")
        self.key_path = key_path


class DependencyMissingError(ConfigError):
    """An optional extra is needed; the message carries the exact install command."""

    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} is not installed. Install it with:  {install}")
        self.install = install


class BadRequestError(PodiumError):
    status = 400
    error_type = "invalid_request_error"


class ContextTooLongError(BadRequestError):
    def __init__(self, message: str, **kwargs: str | None) -> None:
        kwargs.setdefault("code", "context_length_exceeded")
        super().__init__(message, **kwargs)


class ContentFilteredError(BadRequestError):
    def __init__(self, message: str, **kwargs: str | None) -> None:
        kwargs.setdefault("code", "content_filter")
        super().__init__(message, **kwargs)


class AuthenticationError(PodiumError):
    status = 401
    error_type = "authentication_error"


class PermissionDeniedError(PodiumError):
    status = 403
    error_type = "permission_error"


class NotFoundError(PodiumError):
    status = 404
    error_type = "not_found_error"


class RateLimitedError(PodiumError):
    status = 429
    error_type = "rate_limit_error"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PolicyError(PodiumError):
    """A call refused by the request's own policy (scope, region, budget, limits), before it was sent."""

    status = 403
    error_type = "permission_error"


class ScopeError(PolicyError):
    def __init__(self, message: str, **kwargs: str | None) -> None:
        kwargs.setdefault("code", "model_not_allowed")
        super().__init__(message, **kwargs)


class RegionError(PolicyError):
    def __init__(self, message: str, **kwargs: str | None) -> None:
        kwargs.setdefault("code", "region_not_allowed")
        super().__init__(message, **kwargs)


class BudgetExceededError(PolicyError):
    status = 429
    error_type = "insufficient_quota"


class LimitExceededError(PolicyError):
    """The caller's own RPM/TPM (its key's or team's), as opposed to a provider's ``RateLimitedError``."""

    status = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: str | None) -> None:
        kwargs.setdefault("code", "rate_limit_exceeded")
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class StoreUnavailableError(PodiumError):
    """The ledger or the key store (PostgreSQL, Redis) cannot be reached; the message names where."""

    status = 503
    error_type = "service_unavailable"

    def __init__(self, message: str, **kwargs: str | None) -> None:
        kwargs.setdefault("code", "store_unavailable")
        super().__init__(message, **kwargs)


class TimeoutError(PodiumError):
    status = 504
    error_type = "timeout"
    retryable = True


class ProviderError(PodiumError):
    status = 502
    error_type = "api_error"


class ProviderUnavailableError(ProviderError):
    status = 503
    error_type = "service_unavailable"
    retryable = True


# (pattern, keeps its first group): key-shaped tokens go entirely; "Bearer x" keeps "Bearer ".
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], bool], ...] = (
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"), False),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), False),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"), True),
    (re.compile(r"(?i)((?:api[_-]?key|x-api-key|x-goog-api-key|token)[\"']?\s*[:=]\s*[\"']?)"
                r"[A-Za-z0-9._\-]{8,}"), True),
)


def redact(text: str, *secrets: str | None) -> str:
    """Remove known secrets and anything shaped like an API key from a message."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    for pattern, keep_prefix in _SECRET_PATTERNS:
        text = pattern.sub((lambda m: m.group(1) + "[REDACTED]") if keep_prefix else "[REDACTED]", text)
    return text
