"""Guardrails: find personal data, secrets and prompt injection in a request, and decide what to do."""
