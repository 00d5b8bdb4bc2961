"""A/B experiments and shadow trials: comparing routing choices on live traffic before switching.

    checks      the config's experiments and shadow trials resolved and checked when it loads
    assignment  which arm serves a request: sticky (hashed from the experiment and the user or key),
                held to the request's policy (an arm the key may not use falls back to control)
    shadow      a sampled share of served requests also sent to a candidate in the background,
                compared with the served answer and recorded, never returned and never waited for
    stats       confidence intervals for the reports (Wilson, Newcombe, Student's t, bootstrap)
"""
