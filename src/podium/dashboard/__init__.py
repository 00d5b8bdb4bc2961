"""The dashboard: the seeds' KPIs, live, from the ledger, in a browser.

A thin shell over the ledger, in layers that each do one thing:

    ranges   the time range a page asks for (``?range=24h`` or ``?from=…&to=…``), checked
    queries  portable SQL builders (SQLite and PostgreSQL read by the same statements)
    reader   runs them off the event loop: a small thread pool of its own, read-only connections
    views    the pages' numbers from the rows (percentiles, error classes, suggestions, trace trees)
    svg      charts drawn on the server as SVG: no JavaScript library, works offline, readable text
    api      the JSON endpoints and the static pages, mounted by ``podium serve`` or ``podium dashboard``

The ledger holds no prompts, and the pages show keys only by id and name.
"""
