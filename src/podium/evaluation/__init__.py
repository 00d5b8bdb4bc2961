"""``podium eval``: replay routing policies on recorded answers and score them as RouteLLM and RouterBench do.

One concept per module: :mod:`dataset` (the format and its loaders), :mod:`metrics` (PGR, APGR, CPT,
AIQ, exactly as the reference code computes them), :mod:`routers` (the interface a router offers the
replay, and the baselines), :mod:`replay` (cross-fitted k-fold scoring), :mod:`report` (Markdown and SVG).
"""
