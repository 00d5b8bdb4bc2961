"""Resilience: deployments, balancing, retries, circuit breakers and fallbacks around model calls."""
