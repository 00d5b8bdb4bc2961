"""Options the CLI used to accept and then do something odd with: an empty or misspelled key scope,
negative budgets and limits, filters no model can match; and `podium serve`'s line saying where it
listens."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import SCRIPTED_CONFIG
from podium.server.keys import KeyStore
from test_cli import run


@pytest.fixture
def keys_config(tmp_path: Path) -> Path:
    path = tmp_path / "podium.yaml"
    path.write_text(yaml.safe_dump({**SCRIPTED_CONFIG, "gateway": {"keys_path": str(tmp_path / "keys.sqlite3")},
                                    "strategies": {"panel": {"type": "consensus", "models": ["cheap", "pricey"]}},
                                    "ledger": {"enabled": False}}), encoding="utf-8")
    return path


@pytest.mark.parametrize(("options", "message"), [
    (("--models", ""), "--models: give at least one model or strategy name"),
    (("--models", " , "), "--models: give at least one model or strategy name"),
    (("--budget", "-5"), "--budget: input should be greater than or equal to 0 (got -5.0)"),
    (("--budget", "nan"), "--budget: input should be a finite number"),
    (("--rpm", "0"), "--rpm: input should be greater than 0 (got 0)"),
    (("--rpm", "-1"), "--rpm: input should be greater than 0"),
    (("--tpm", "0"), "--tpm: input should be greater than 0 (got 0)"),
    (("--period", "week"), "--period must be total, day or month, not 'week'"),
    (("--models", "cheap,pricy"), "--models: Unknown model 'pricy'. Did you mean: pricey"),
    (("--models", "pannel"), "Did you mean: panel"),
    (("--models", "consensu:cheap"), "unknown strategy kind 'consensu' in 'consensu:cheap'"),
    (("--models", "consensu:cheap"), "Did you mean: consensus?"),
])
def test_keys_create_refuses_what_the_admin_api_refuses(tmp_path: Path, keys_config: Path,
                                                         options: tuple[str, ...], message: str):
    result = run("keys", "create", "team-a", *options, "--config", str(keys_config), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert KeyStore(tmp_path / "keys.sqlite3").list() == []  # nothing was created


def test_keys_create_refuses_an_empty_name(tmp_path: Path, keys_config: Path):
    result = run("keys", "create", "  ", "--config", str(keys_config), cwd=tmp_path)
    assert result.returncode == 2 and "the name: string should have at least 1 character" in result.stderr


def test_keys_create_takes_models_aliases_strategies_auto_and_kinds(tmp_path: Path, keys_config: Path):
    scope = "cheap, gpt-4o, panel, auto, consensus, consensus:cheap, fast-vote"
    made = run("keys", "create", " team-a ", "--models", scope, "--budget", "0", "--rpm", "1", "--tpm", "5",
               "--config", str(keys_config), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "(team-a)" in made.stdout
    [key] = KeyStore(tmp_path / "keys.sqlite3").list()
    assert key.name == "team-a" and key.models == tuple(m.strip() for m in scope.split(","))
    assert (key.budget, key.rpm, key.tpm) == (0.0, 1, 5)
    alias = run("keys", "create", "b", "--models", "smollm2,,cheap,", "--config", str(keys_config), cwd=tmp_path)
    assert alias.returncode == 0, alias.stderr
    assert KeyStore(tmp_path / "keys.sqlite3").list()[-1].models == ("smollm2", "cheap")
    unscoped = run("keys", "create", "c", "--config", str(keys_config), cwd=tmp_path)
    assert unscoped.returncode == 0
    assert [k.models for k in KeyStore(tmp_path / "keys.sqlite3").list()][-1] is None


def test_keys_create_help_says_where_inline_strategies_go(tmp_path: Path):
    result = run("keys", "create", "--help", cwd=tmp_path)
    flat = " ".join(result.stdout.replace("│", " ").split())
    assert "name it under strategies in the config" in flat


@pytest.mark.parametrize(("options", "message"), [
    (("--tier", "mega"), "--tier: unknown value 'mega' (one of: advanced, fast, standard)"),
    (("--region", "mars"), "--region: unknown value 'mars' (one of: ch, cn, eu, global, local, us)"),
    (("--capability", "cod"), "Did you mean: code?"),
    (("--provider", "canned-us"), "--provider: unknown value 'canned-us'"),
    (("--max-cost", "-1"), "--max-cost must be 0 or more"),
])
def test_models_refuses_filters_no_model_can_match(scripted_config: Path, tmp_path: Path,
                                                   options: tuple[str, ...], message: str):
    result = run("models", *options, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr


def test_models_accepts_every_valid_filter_value(scripted_config: Path, tmp_path: Path):
    for options in (("--tier", "standard"), ("--region", "eu"), ("--capability", "planning"),
                    ("--provider", "canned-eu"), ("--provider", "openai"), ("--max-cost", "0")):
        result = run("models", "--json", "--all", *options, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        json.loads(result.stdout)


def serve(tmp_path: Path, config: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "podium.cli", "serve", "--config", str(config), *options],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_says_where_it_listens_with_the_port_the_system_chose(scripted_config: Path, tmp_path: Path):
    process = serve(tmp_path, scripted_config, "--port", "0")
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert " INFO podium.serve: listening on http://127.0.0.1:" in line, line
        assert f"(auth required, ledger {tmp_path / 'ledger.sqlite3'})" in line
        port = int(line.split("http://127.0.0.1:")[1].split()[0])
        assert port != 0
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(10)


def test_serve_s_line_follows_the_log_level(scripted_config: Path, tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    quiet = serve(tmp_path, scripted_config, "--port", str(port), "--log-level", "warning", "--no-auth")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert quiet.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        quiet.terminate()
        _, stderr = quiet.communicate(timeout=10)
    assert "listening on" not in stderr
    loud = serve(tmp_path, scripted_config, "--port", "0", "--no-auth")
    try:
        assert loud.stderr is not None
        assert "(auth optional, ledger " in loud.stderr.readline()
    finally:
        loud.terminate()
        loud.wait(10)
