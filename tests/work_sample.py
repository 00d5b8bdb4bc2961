"""The example work package (examples/work-package) as a test fixture: its repository as a real git repo, a
podium.yaml whose three roles are scripted models of two providers, and the scripted team's answers."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from podium.client import Podium
from podium.config import load_settings
from podium.providers.scripted import ScriptedProvider, Step
from podium.types import ChatRequest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "work-package"


def team() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scripted_team", EXAMPLE / "scripted_team.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout


def make_repo(tmp_path: Path, python: str = sys.executable) -> tuple[Path, Path, Path]:
    """The sample repository (committed on main), the package (its check run by ``python``) and the plan."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE / "repo", repo)
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm", "sample")
    package = tmp_path / "Arbeitspaket.md"
    package.write_text((EXAMPLE / "Arbeitspaket.md").read_text().replace("check: python3 check.py",
                                                                          f"check: {python} check.py"))
    plan = tmp_path / "plan.yaml"
    shutil.copy(EXAMPLE / "plan.yaml", plan)
    return repo, package, plan


def row(provider: str, model_id: str, input_price: float, output_price: float, tier: str,
        region: str) -> dict[str, Any]:
    return {"provider": provider, "model_id": model_id, "context_window": 32000, "max_output_tokens": 1000,
            "input_price": input_price, "output_price": output_price, "tier": tier, "region": region,
            "capabilities": ["chat", "code"]}


def config(tmp_path: Path, **work: Any) -> Path:
    data = {
        "providers": {"acme": {"kind": "scripted", "region": "us"}, "euro": {"kind": "scripted", "region": "eu"},
                      "local": {"enabled": False}},
        "models": {"conductor-m": row("acme", "conductor-m", 3.0, 15.0, "advanced", "us"),
                   "worker-m": row("acme", "worker-m", 0.3, 1.2, "standard", "us"),
                   "reviewer-m": row("euro", "reviewer-m", 0.2, 0.6, "standard", "eu")},
        "resilience": {"retries": {"max_attempts": 1, "base_delay": 0.0}},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
        "work": {"presets": {"sample": {"conductor": ["conductor-m"], "worker": ["worker-m"],
                                        "reviewer": ["reviewer-m"]}},
                 "preset": "sample", **work},
    }
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(data))
    return path


def texts(request: ChatRequest) -> tuple[str, str]:
    system = "".join(str(m.content) for m in request.messages if m.role == "system")
    prompt = "\n".join(str(m.content) for m in request.messages if m.role != "system")
    return system, prompt


def podium_for(tmp_path: Path, latency: float = 0.0, **work: Any) -> Podium:
    """A Podium whose models answer as the example's scripted team, each call taking ``latency`` seconds."""
    podium = Podium(load_settings(config(tmp_path, **work)))
    answers = team()

    def step(request: ChatRequest) -> Step:
        system, prompt = texts(request)
        text = answers.answer(system, prompt)
        return Step(text=text, latency=latency, input_tokens=max(1, len((system + prompt).split())),
                    output_tokens=max(1, len(text.split())))

    for provider, model in (("acme", "conductor-m"), ("acme", "worker-m"), ("euro", "reviewer-m")):
        found = podium.registry.get_provider(provider)
        assert isinstance(found, ScriptedProvider)
        found.set_script(model, step)
    return podium
