import pytest

from podium import errors


@pytest.mark.parametrize(("cls", "status", "error_type"), [
    (errors.BadRequestError, 400, "invalid_request_error"),
    (errors.ContextTooLongError, 400, "invalid_request_error"),
    (errors.ContentFilteredError, 400, "invalid_request_error"),
    (errors.AuthenticationError, 401, "authentication_error"),
    (errors.PermissionDeniedError, 403, "permission_error"),
    (errors.NotFoundError, 404, "not_found_error"),
    (errors.RateLimitedError, 429, "rate_limit_error"),
    (errors.BudgetExceededError, 429, "insufficient_quota"),
    (errors.TimeoutError, 504, "timeout"),
    (errors.ProviderError, 502, "api_error"),
    (errors.ProviderUnavailableError, 503, "service_unavailable"),
])
def test_each_error_knows_its_status_and_openai_type(cls, status, error_type):
    exc = cls("boom")
    assert isinstance(exc, errors.PodiumError)
    assert exc.status == status
    assert exc.to_openai()["error"]["type"] == error_type
    assert exc.to_openai()["error"]["message"] == "boom"


def test_only_transient_errors_are_retryable():
    retryable = {c.__name__ for c in (errors.RateLimitedError, errors.TimeoutError, errors.ProviderUnavailableError)}
    for cls in (errors.BadRequestError, errors.AuthenticationError, errors.NotFoundError, errors.ProviderError,
                errors.BudgetExceededError, errors.ContextTooLongError, *(getattr(errors, n) for n in retryable)):
        assert cls.retryable == (cls.__name__ in retryable), cls


def test_rate_limited_carries_retry_after_and_context_code():
    assert errors.RateLimitedError("slow down", retry_after=2.5).retry_after == 2.5
    assert errors.ContextTooLongError("too long").code == "context_length_exceeded"


def test_config_error_names_the_key_path():
    assert str(errors.ConfigError("unknown key", key_path="providers.openai.api_kye")) == \
        "providers.openai.api_kye: unknown key"


def test_redact_removes_keys_and_known_secrets():
    text = ("Incorrect API key provided: sk-proj-abcdefghijklmnop1234. Authorization: Bearer abcdefghijkl123 "
            "x-goog-api-key: AIzaSyA1234567890abcdefghijklmnop and my-secret-value")
    clean = errors.redact(text, "my-secret-value")
    for secret in ("sk-proj-abcdefghijklmnop1234", "abcdefghijkl123", "AIzaSyA1234567890abcdefghijklmnop",
                   "my-secret-value"):
        assert secret not in clean
    assert "Bearer [REDACTED]" in clean
