"""Routers that learn which model succeeds on which prompt (issue 12, parts 3 and 4).

The contract every learned router meets is in :mod:`podium.routing.learned.contract`; the gateway,
the CLI and ``podium eval`` use only that, so a new learner is one module.
"""
