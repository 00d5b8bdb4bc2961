"""Prompt embeddings for a dataset, computed once and kept on disk.

Why a cache: MMLU's 14,000 prompts take about two minutes to embed on one core, and every learned
router, every fold and the online simulation need the same vectors. The file is named by a hash of
the embedder and of every prompt in order, so a changed dataset can never read stale vectors; it lives
under ``$XDG_CACHE_HOME/podium/embeddings`` (``~/.cache`` when unset) or ``$PODIUM_EMBEDDING_CACHE``.
Writes go to a temporary file renamed into place, so a run killed mid-write leaves no half file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from podium.routing.learned.contract import Vectors

EMBEDDER = "all-minilm-l6-v2"


def cache_dir() -> Path:
    explicit = os.environ.get("PODIUM_EMBEDDING_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "podium" / "embeddings"


def _key(prompts: Sequence[str]) -> str:
    digest = hashlib.sha256(EMBEDDER.encode())
    for prompt in prompts:
        digest.update(len(prompt).to_bytes(8, "little"))
        digest.update(prompt.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def embed_prompts(prompts: Sequence[str], *, use_cache: bool = True) -> Vectors:
    """Unit vectors (n, 384) for ``prompts`` in order, from the cache when it holds them."""
    from podium.providers.local.minilm import load

    path = cache_dir() / f"{EMBEDDER}-{_key(prompts)}.npy"
    if use_cache and path.is_file():
        cached = np.load(path)
        if cached.shape == (len(prompts), 384):
            return np.asarray(cached, dtype=np.float32)
    vectors, _ = load().embed(list(prompts))
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vectors)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache directory costs time, not correctness
    return vectors
