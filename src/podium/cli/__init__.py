"""The ``podium`` command: a thin Typer shell over ``podium.client``."""
