"""A config the CLI cannot use ends the command with exit 2 and one line that names the problem.

Run as a user would (``.venv/bin/podium``, a real config file, a real file system): a config that
is not UTF-8, a ledger (or key store) path that cannot be written, bad steps for the ``scripted``
provider, and a key YAML 1.1 read as a boolean. Never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

PODIUM = Path(sys.executable).with_name("podium")

CANNED: dict[str, Any] = {
    "providers": {"canned": {"kind": "scripted", "options": {"answers": {"m-1": "Paris"}}}},
    "models": {"m": {"provider": "canned", "model_id": "m-1", "context_window": 4000, "input_price": 0,
                     "output_price": 0, "tier": "fast", "region": "us"}},
    "routing": {"default": "m"},
}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "PODIUM_CONFIG"}
    env.update(XDG_DATA_HOME=str(cwd / "data"), XDG_CONFIG_HOME=str(cwd / "config"), COLUMNS="120")
    return subprocess.run([str(PODIUM), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def one_line_exit_2(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path):
    config = tmp_path / "podium.yaml"
    config.write_bytes("routing:\n  default: smollm2-135m   # café\n".encode("latin-1"))
    line = one_line_exit_2(run("ask", "hi", "--config", str(config), cwd=tmp_path), "not UTF-8", "0xe9")
    assert str(config) in line
    one_line_exit_2(run("models", "--config", str(config), cwd=tmp_path), "not UTF-8")


def _ledger_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "a-dir").mkdir()
    readonly = tmp_path / "read-only"
    readonly.mkdir()
    readonly.chmod(0o555)
    return {"under a regular file": (tmp_path / "a-file" / "ledger.sqlite3", "a-file is a file, not a directory"),
            "a directory": (tmp_path / "a-dir", "it is a directory"),
            "a directory one may not write": (readonly / "ledger.sqlite3", "ledger.sqlite3"),
            "a path that cannot exist": (Path("/proc/podium-test/ledger.sqlite3"), "/proc/podium-test")}


@pytest.mark.parametrize("case", ["under a regular file", "a directory", "a directory one may not write",
                                  "a path that cannot exist"])
def test_an_unwritable_ledger_is_one_line(tmp_path: Path, case: str):
    if case == "a directory one may not write" and os.geteuid() == 0:
        pytest.skip("root may write in any directory")
    ledger, why = _ledger_cases(tmp_path)[case]
    config = write(tmp_path / "podium.yaml", {**CANNED, "ledger": {"path": str(ledger)}})
    for command in (["ask", "hi"], ["report"]):
        one_line_exit_2(run(*command, "--config", str(config), cwd=tmp_path), "cannot write the ledger", why,
                        "ledger.path")


def test_an_unwritable_key_store_is_one_line_for_serve_and_keys(tmp_path: Path):
    (tmp_path / "a-file").write_text("not a directory")
    config = write(tmp_path / "podium.yaml", {**CANNED, "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
                                              "gateway": {"keys_path": str(tmp_path / "a-file" / "keys.sqlite3")}})
    one_line_exit_2(run("keys", "list", "--config", str(config), cwd=tmp_path), "cannot write the key store",
                    "gateway.keys_path")
    one_line_exit_2(run("serve", "--port", "0", "--config", str(config), cwd=tmp_path), "cannot write the key store")


BAD_STEPS = [
    ({"answers": {"m-1": {"txt": "hi"}}}, "providers.canned.options.answers.m-1.txt", "unknown key"),
    ({"answers": {"m-1": {"text": "hi", "latency": "slow"}}}, "answers.m-1.latency", "a number of seconds"),
    ({"answers": {"m-1": [{"error": "exploded"}]}}, "answers.m-1[0].error", "unknown error kind"),
    ({"answers": {"m-1": ["ok", 42]}}, "answers.m-1[1]", "not int"),
    ({"answers": {"m-1": []}}, "answers.m-1", "at least one step"),
    ({"answers": ["Paris"]}, "options.answers", "must map model ids to steps"),
    ({"answer": {"m-1": "Paris"}}, "options.answer", "unknown key"),
    ({"default": {"output_tokens": 1.5}}, "options.default.output_tokens", "a whole number"),
]


@pytest.mark.parametrize(("options", "where", "what"), BAD_STEPS, ids=[w for _, w, _ in BAD_STEPS])
def test_bad_scripted_steps_are_one_line(tmp_path: Path, options: dict[str, Any], where: str, what: str):
    data = {**CANNED, "providers": {"canned": {"kind": "scripted", "options": options}}, "ledger": {"enabled": False}}
    config = write(tmp_path / "podium.yaml", data)
    one_line_exit_2(run("ask", "hi", "--config", str(config), cwd=tmp_path), where, what)


def test_good_scripted_steps_from_the_config_play(tmp_path: Path):
    data = {**CANNED, "ledger": {"enabled": False}, "providers": {"canned": {"kind": "scripted", "options": {
        "answers": {"m-1": [{"error": "unavailable"}, {"text": "Lyon", "latency": 0, "output_tokens": 3}]}}}},
        "resilience": {"retries": {"base_delay": 0, "max_delay": 0}}}
    config = write(tmp_path / "podium.yaml", data)
    result = run("ask", "hi", "--config", str(config), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    answer = yaml.safe_load(result.stdout)
    assert answer["text"] == "Lyon" and answer["usage"]["output_tokens"] == 3
    assert answer["trace"]["retries"] == 1  # the scripted 'unavailable' was retried


def test_a_key_yaml_reads_as_a_boolean_is_explained(tmp_path: Path):
    config = tmp_path / "podium.yaml"
    config.write_text("resilience:\n  fallbacks:\n    - {model: gpt-4o, true: [timeout], to: [gpt-4o-mini]}\n")
    one_line_exit_2(run("ask", "hi", "--config", str(config), cwd=tmp_path), "resilience.fallbacks[0].True",
                    "boolean", "quote it")


def test_a_provider_pointing_at_the_gateway_itself_is_refused_at_start(tmp_path: Path) -> None:
    """ANTHROPIC_BASE_URL exported for a client in the shell that starts the gateway: the gateway's own Anthropic
    provider would call itself for every request."""
    config = write(tmp_path / "podium.yaml", {"providers": {
        "loop": {"kind": "anthropic", "base_url": "http://localhost:45123/", "api_key": "pk-x"},
        "local": {"enabled": False}}})
    result = run("serve", "--port", "45123", "--config", str(config), cwd=tmp_path)
    one_line_exit_2(result, "provider 'loop' points at this gateway itself", "ANTHROPIC_BASE_URL")
