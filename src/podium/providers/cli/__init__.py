"""``kind: cli``: a vendor's command-line tool (Gemini CLI, Claude Code, or any command) run once per request.

Subscription tools carry their own login, so a person's subscription can serve a role in Podium like any
API key. ``tools`` holds what differs per tool (its flags, its JSON, its failures), ``process`` how one
run is started, bounded and killed, and ``provider`` the ``Provider`` that joins them.
"""
