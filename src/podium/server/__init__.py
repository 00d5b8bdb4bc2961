"""The OpenAI-compatible HTTP gateway: a thin shell over ``podium.client`` plus the middleware stack."""
