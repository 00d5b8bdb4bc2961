"""Breaker, retry and balancing policies, with a fake clock and seeded randomness."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from podium.catalogue import bundled_catalogue
from podium.errors import ConfigError, RateLimitedError, TimeoutError
from podium.resilience.balancing import LeastBusy, LeastLatency, LowestCost, RoundRobin, WeightedRandom, make_policy
from podium.resilience.breaker import CircuitBreaker
from podium.resilience.deployments import Deployment
from podium.resilience.retry import RetryPolicy, is_retryable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_probes_and_closes():
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=10, clock=clock)
    breaker.record_failure()
    breaker.record_success()  # a success resets the count
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    assert breaker.retry_in() == pytest.approx(10)
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.state == "half-open"
    assert breaker.allow()  # one probe
    assert not breaker.allow()  # only one at a time
    breaker.record_failure()  # the probe failed: open again, for a full cooldown
    assert breaker.state == "open" and breaker.opened_count == 2
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def test_retry_delay_grows_is_capped_jittered_and_honours_retry_after():
    fixed = RetryPolicy(base_delay=0.5, max_delay=4, jitter=False)
    assert [fixed.delay(a) for a in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    jittered = RetryPolicy(base_delay=0.5, max_delay=4, rng=random.Random(1))
    draws = [jittered.delay(3) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in draws) and len(set(draws)) > 100
    assert fixed.delay(0, RateLimitedError("slow down", retry_after=7)) == 7
    assert fixed.delay(3, RateLimitedError("slow down", retry_after=1)) == 4.0  # never shorter than backoff
    assert is_retryable(TimeoutError("t")) and not is_retryable(ValueError())


def deployments(*specs: tuple[str, float]) -> list[Deployment]:
    row = bundled_catalogue().get("gpt-4o-mini")
    return [Deployment(name, row, weight=weight) for name, weight in specs]


def test_weighted_random_follows_weights():
    deps = deployments(("a", 3), ("b", 1))
    policy = WeightedRandom(random.Random(7))
    firsts = Counter(policy.order(deps)[0].id for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80


def test_round_robin_is_smooth_and_weighted():
    deps = deployments(("a", 2), ("b", 1), ("c", 1))
    policy = RoundRobin()
    picks = [policy.order(deps)[0].id for _ in range(8)]
    assert Counter(picks) == {"a": 4, "b": 2, "c": 2}
    # smooth: every window of 4 consecutive picks holds exactly the weights (2 a, 1 b, 1 c)
    assert all(Counter(picks[i:i + 4]) == {"a": 2, "b": 1, "c": 1} for i in range(5))


def test_least_latency_least_busy_lowest_cost():
    a, b, c = deployments(("a", 1), ("b", 1), ("c", 1))
    a.finished(120)
    b.finished(40)
    assert [d.id for d in LeastLatency().order([a, b, c])] == ["c", "b", "a"]  # unmeasured first
    a.in_flight, b.in_flight, c.in_flight = 2, 0, 5
    assert [d.id for d in LeastBusy().order([a, b, c])] == ["b", "a", "c"]
    cheap = Deployment("cheap", bundled_catalogue().get("gpt-4o-mini"))
    dear = Deployment("dear", bundled_catalogue().get("gpt-4o"))
    assert [d.id for d in LowestCost().order([dear, cheap])] == ["cheap", "dear"]
    with pytest.raises(ConfigError, match=r"resilience\.balancing"):
        make_policy("fastest")


def test_rpm_and_tpm_capacity_over_a_sliding_minute():
    clock = Clock()
    dep = Deployment("d", bundled_catalogue().get("gpt-4o-mini"), rpm=2, tpm=1000, clock=clock)
    assert dep.has_capacity(400)
    dep.started(400)
    assert dep.has_capacity(500) and not dep.has_capacity(700)  # TPM
    dep.started(500)
    assert not dep.has_capacity(1)  # RPM
    clock.now += 61
    assert dep.has_capacity(900)
