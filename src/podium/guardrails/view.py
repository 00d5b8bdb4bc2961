"""A long text as the byte-level checks of the detectors read it, each part worked out once and shared.

Several detectors look at a long text as bytes before they run a pattern over it (which pairs of
characters it holds, where digits are…): one byte per character, every non-ASCII character read
as ``?`` (so offsets stay those of the text; the patterns that matter are ASCII). Encoding 4 MB
costs up to 5 ms and counting its pairs 6 ms: once per text, not once per detector.
"""

from __future__ import annotations

from typing import Any


class View:
    __slots__ = ("_pairs", "_raw", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._raw: bytes | None = None
        self._pairs: Any = None

    @property
    def raw(self) -> bytes:
        """One byte a character: the text's ASCII, and ``?`` for every other character."""
        if self._raw is None:
            self._raw = self.text.encode() if self.text.isascii() else self.text.encode("ascii", "replace")
        return self._raw

    def counted_pairs(self) -> Any:
        """``pairs()`` if a detector has counted them already, else None (not worth counting for one use)."""
        return self._pairs

    def pairs(self) -> Any:
        """How often each pair of adjacent bytes occurs (numpy), at ``first | second << 8``."""
        if self._pairs is None:
            import numpy as np

            raw = self.raw
            self._pairs = (np.bincount(np.frombuffer(raw, dtype="<u2", count=len(raw) // 2), minlength=1 << 16)
                           + np.bincount(np.frombuffer(raw, dtype="<u2", count=(len(raw) - 1) // 2, offset=1),
                                         minlength=1 << 16))
        return self._pairs
