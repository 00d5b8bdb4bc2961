"""The router file: what ``podium router train`` writes and ``routing.router: learned`` loads.

One ``.npz`` (a zip of ``.npy`` arrays, numpy's own format) holding the learner's numeric arrays and
one more, ``header``: UTF-8 JSON as bytes. It is loaded with ``allow_pickle=False``, so a file from
anywhere can hold no code: an object (pickled) array, a wrong shape or dtype, NaN or infinity, an
unknown kind, a missing field or another format version is refused with a :class:`ConfigError` that
names the file and says how to get a good one. The header::

    {"format": "podium-router", "version": 1, "kind": "knn", "models": ["gpt-4o", "llama-3-8b"],
     "costs": {"gpt-4o": 0.0021, "llama-3-8b": 0.0001},      # mean USD per prompt, when known
     "embedder": "all-minilm-l6-v2", "dimensions": 384, "uses_text": false,
     "knob": 0.9, "params": {"k": 40, ...},                   # the learner's hyper-parameters
     "training": {...}, "metrics": {...}}                     # what it was fitted on, held-out results

``uses_text``: the learner also reads cheap features of the prompt text (length, digits, code; never
stored), so its caller passes the prompt beside the embedding (:func:`chances`).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from podium.errors import ConfigError
from podium.routing.learned.common import DIMENSIONS, EMBEDDER, Learner
from podium.routing.learned.contract import Floats, LearnedRouter, Vectors
from podium.safe_files import check_writable_target, regular_file, safe_write

FORMAT, VERSION = "podium-router", 1
HEADER = "header"
_MAX_HEADER = 1 << 20
_MAX_UNPACKED = 512 << 20  # bytes of all arrays once loaded: a knn file of 300,000 prompts is ~470 MB
_MAX_MEMBERS = 1000


def kinds() -> dict[str, type[Learner]]:
    """Every learner a router file may hold, by ``kind``."""
    from podium.routing.learned.bandit import BanditRouter
    from podium.routing.learned.ensemble import EnsembleRouter
    from podium.routing.learned.knn import KnnRouter
    from podium.routing.learned.logistic import LogisticRouter
    from podium.routing.learned.mf import MfRouter
    from podium.routing.learned.mlp import MlpRouter

    return {c.kind: c for c in (KnnRouter, LogisticRouter, MlpRouter, MfRouter, EnsembleRouter, BanditRouter)}


def chances(router: LearnedRouter | Learner, embeddings: Vectors, prompts: Sequence[str] | None = None) -> Floats:
    """``router.predict``, passing the prompt texts to a learner that reads them (``uses_text``)."""
    if getattr(router, "uses_text", False):
        return router.predict(embeddings, prompts)  # type: ignore[call-arg]
    return router.predict(embeddings)


def header_of(router: Learner) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "kind": router.kind, "models": list(router.models),
            "costs": {m: float(c) for m, c in router.costs.items()}, "embedder": EMBEDDER,
            "dimensions": DIMENSIONS, "uses_text": bool(router.uses_text), "knob": float(router.knob),
            "params": router.params(), "training": router.info.get("training", {}),
            "metrics": router.info.get("metrics", {})}


def flatten(router: Learner, prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + k: np.ascontiguousarray(v) for k, v in router.arrays().items()}


def save_router(router: Learner, path: str | Path) -> Path:
    """Write ``router`` to ``path`` (atomically: a temporary file renamed into place). A ``path`` that exists
    and is not a regular file (a device such as ``/dev/null``, a FIFO, a directory, a symlink) is refused
    with a ConfigError rather than replaced (:func:`podium.safe_files.safe_write`)."""
    target = check_writable_target(path, "router file")
    arrays = flatten(router)
    if HEADER in arrays:
        raise ValueError(f"a learner may not name an array {HEADER!r}")
    header = json.dumps(header_of(router), sort_keys=True, allow_nan=False).encode()
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **{HEADER: np.frombuffer(header, dtype=np.uint8), **arrays})
    safe_write(target, buffer.getvalue(), "router file")
    return target


def load_router(path: str | Path) -> Learner:
    """The learner in a router file; anything unexpected is a ConfigError naming the file and the fix."""
    p = Path(path)
    fix = f"write one with `podium router train DATASET --kind knn --out {p}`"
    if not p.exists() and not p.is_symlink():
        raise ConfigError(f"no router file at {p}: {fix}")
    try:
        regular_file(p, "router file")
    except ConfigError as exc:
        raise ConfigError(f"{exc}; {fix}") from None
    if not zipfile.is_zipfile(p):
        raise ConfigError(f"{p} is not a router file (not an .npz archive); {fix}")
    _check_sizes(p, fix)
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        reason = "it holds pickled objects, which are never loaded" if "pickle" in str(exc) else \
            f"{type(exc).__name__}: {exc}"[:200]
        raise ConfigError(f"{p} is not a readable Podium router file ({reason}); {fix}") from None
    try:
        raw = arrays.pop(HEADER)
        if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_HEADER:
            raise ValueError("bad header array")
        header = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
    except (KeyError, ValueError, UnicodeDecodeError):
        raise ConfigError(f"{p} is not a Podium router file (no valid header); {fix}") from None
    if header.get("format") != FORMAT:
        raise ConfigError(f"{p} is not a Podium router file (format {header.get('format')!r}); {fix}")
    if header.get("version") != VERSION:
        raise ConfigError(f"{p} has router file version {header.get('version')!r}, this Podium reads version "
                          f"{VERSION}: retrain it with this version's `podium router train`")
    try:
        return _build(header, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ConfigError(f"{p} is a damaged or incompatible router file ({detail}); {fix}") from None


def _check_sizes(p: Path, fix: str) -> None:
    """Read every member's ``.npy`` header (a few bytes) before any array is loaded: a small compressed
    file may declare arrays of gigabytes (a "zip bomb"); refuse more than ``_MAX_UNPACKED`` bytes in all."""
    total = 0
    try:
        with zipfile.ZipFile(p) as archive:
            members = archive.infolist()
            if len(members) > _MAX_MEMBERS:
                raise ValueError(f"{len(members)} arrays")
            for info in members:
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        raise ValueError(f"member {info.filename!r} has .npy version {version}")
                if dtype.hasobject:
                    raise ConfigError(f"{p} is not a readable Podium router file (it holds pickled objects, "
                                      f"which are never loaded); {fix}")
                total += int(np.prod(shape, dtype=object)) * dtype.itemsize
                if total > _MAX_UNPACKED:
                    raise ConfigError(f"{p} declares arrays of more than {_MAX_UNPACKED >> 20} MB once unpacked "
                                      f"(array {info.filename!r} of shape {tuple(shape)}): refused; {fix}")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise ConfigError(f"{p} is not a readable Podium router file "
                          f"({f'{type(exc).__name__}: {exc}'[:200]}); {fix}") from None


def _build(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Learner:
    kind = header["kind"]
    known = kinds()
    if kind not in known:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(sorted(known))}")
    if header["embedder"] != EMBEDDER or header["dimensions"] != DIMENSIONS:
        raise ValueError(f"embedder {header['embedder']!r}/{header['dimensions']}, this Podium embeds with "
                         f"{EMBEDDER}/{DIMENSIONS}")
    models = header["models"]
    if not isinstance(models, list) or len(models) < 2 or not all(isinstance(m, str) and m for m in models) \
            or len(set(models)) != len(models):
        raise ValueError("'models' must list two or more distinct model names")
    costs = header.get("costs") or {}
    if not isinstance(costs, dict) or not all(m in models and isinstance(c, int | float) and c >= 0
                                              for m, c in costs.items()):
        raise ValueError("'costs' must map known models to non-negative numbers")
    knob = header["knob"]
    if not isinstance(knob, int | float) or not 0 <= knob <= 1:
        raise ValueError("'knob' must be a number in [0, 1]")
    params = header["params"]
    if not isinstance(params, dict):
        raise ValueError("'params' must be an object")
    for name, a in arrays.items():
        if a.dtype.kind not in "fiub":
            raise ValueError(f"array {name!r} has dtype {a.dtype}: only numbers are accepted")
    info = {"training": header.get("training", {}), "metrics": header.get("metrics", {})}
    return known[kind].restore(models, params, arrays, knob=float(knob), costs=costs, info=info)
