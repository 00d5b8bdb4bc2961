from datetime import UTC, datetime, timedelta

import httpx
import pytest

from podium import errors
from podium.providers.http import error_message, parse_duration, raise_mapped, retry_after


@pytest.mark.parametrize(("value", "seconds"), [("12", 12), ("1.5", 1.5), ("6m0s", 360), ("1s", 1), ("250ms", 0.25),
                                                ("1h2m3s", 3723), ("", None), ("soon", None)])
def test_parse_duration_reads_every_vendor_format(value, seconds):
    assert parse_duration(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_duration_http_date_and_iso_time():
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert parse_duration(later.strftime("%a, %d %b %Y %H:%M:%S GMT")) == pytest.approx(30, abs=2)
    assert parse_duration(later.isoformat().replace("+00:00", "Z")) == pytest.approx(30, abs=2)


def test_retry_after_prefers_the_header_then_the_longest_reset():
    assert retry_after(httpx.Headers({"retry-after": "7", "x-ratelimit-reset-tokens": "6m0s"})) == 7
    assert retry_after(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert retry_after(httpx.Headers({"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "30s"})) == 30
    assert retry_after(httpx.Headers({"content-type": "application/json"})) is None


@pytest.mark.parametrize(("status", "code", "text", "expected"), [
    (408, None, "request timeout", errors.TimeoutError),
    (413, None, "payload too large", errors.BadRequestError),
    (422, None, "unprocessable", errors.BadRequestError),
    (502, None, "bad gateway", errors.ProviderUnavailableError),
    (504, None, "gateway timeout", errors.ProviderUnavailableError),
    (529, "overloaded_error", "Overloaded", errors.ProviderUnavailableError),
    (418, None, "teapot", errors.ProviderError),
    (200, "overloaded_error", "stream error", errors.ProviderUnavailableError),  # error inside a 200 stream
    (200, "rate_limit_error", "stream error", errors.RateLimitedError),
    (401, "invalid_request_error", "Incorrect API key", errors.AuthenticationError),  # status wins over code
])
def test_status_then_code_decide_the_class(status, code, text, expected):
    with pytest.raises(expected) as info:
        raise_mapped(status, text, code, None, provider="p", model="m")
    assert type(info.value) is expected


def test_error_message_from_every_vendor_shape():
    assert error_message(b'{"error": {"message": "bad", "code": "x"}}') == ("bad", "x")
    assert error_message(b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}') == \
        ("Overloaded", "overloaded_error")
    assert error_message(b'{"error": "model not found"}') == ("model not found", None)
    assert error_message(b'[{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}]') == \
        ("quota", "429")
    assert error_message(b"<html>502 Bad Gateway</html>") == ("<html>502 Bad Gateway</html>", None)
