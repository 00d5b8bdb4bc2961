"""Every YAML example in README.md loads through Podium's own config loader and resolver.

The examples are taken from the README as it is: every ```yaml block, and every podium.yaml written
by a shell here-document (``<<'YAML'``) in a ```bash block. Each is written to a file and loaded with
``load_settings`` (validation, then name resolution) with an empty environment. An example that is
a fragment of a config is loaded as it stands (each is a set of top-level sections); ``FRAGMENTS``
would wrap one whose snippet starts below the top level into its section, and says which.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from podium.config import load_settings
from podium.config.loader import parse_yaml

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCED = re.compile(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_HEREDOC = re.compile(r"<<-?'?(YAML|EOF)'?[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)
# first line of a block that is not a whole config -> the top-level key it belongs under (none today)
FRAGMENTS: dict[str, str] = {}


def examples() -> list[tuple[str, str]]:
    """(where, text) of every YAML example: the README line it starts on, and its text."""
    text = README.read_text(encoding="utf-8")
    found = [(m.start(1), m.group(1)) for m in _FENCED.finditer(text)]
    found += [(m.start(2), m.group(2)) for m in _HEREDOC.finditer(text)]
    return [(f"README.md:{text.count(chr(10), 0, start) + 1}", block) for start, block in sorted(found)]


def as_config(block: str) -> str:
    first = block.lstrip().splitlines()[0] if block.strip() else ""
    section = FRAGMENTS.get(first)
    if section is None:
        return block
    return f"{section}:\n" + "".join(f"  {line}\n" for line in block.splitlines())


EXAMPLES = examples()


def test_the_readme_has_yaml_examples():
    assert len(EXAMPLES) >= 3  # strategies, resilience, the llama.cpp server's podium.yaml


@pytest.mark.parametrize(("where", "block"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_each_yaml_example_loads(tmp_path: Path, where: str, block: str):
    if "router: learned" in block:  # the learned-routing example names a router file: one over two local models
        from podium.routing.learned.bandit import BanditRouter
        from podium.routing.learned.files import save_router

        name = re.search(r"file: (\S+)", block)
        assert name is not None, f"{where}: routing.router: learned without a file"
        save_router(BanditRouter(("smollm2-135m", "gemma3-270m")), tmp_path / name.group(1))
    path = tmp_path / "podium.yaml"
    path.write_text(as_config(block), encoding="utf-8")
    settings = load_settings(path, env={})
    assert settings.source == path
    assert isinstance(parse_yaml(block), dict), f"{where} is not a mapping of settings"


def test_the_resilience_example_keeps_its_fallback_kinds(tmp_path: Path):
    """The key ``on`` of a fallback: YAML 1.1 reads it bare as ``true``; the example and the loader agree."""
    block = next(b for _, b in EXAMPLES if "fallbacks:" in b)
    path = tmp_path / "podium.yaml"
    path.write_text(block, encoding="utf-8")
    fallback = load_settings(path, env={}).resilience.fallbacks[0]
    assert fallback.on == ["rate_limited", "unavailable", "timeout"]
    # written bare, as many write it: still the key "on" for Podium, and a clear hint from plain PyYAML data
    bare = block.replace('"on":', "on:")
    path.write_text(bare, encoding="utf-8")
    assert load_settings(path, env={}).resilience.fallbacks[0].on == fallback.on
    from podium.config.loader import validate
    from podium.errors import ConfigError

    with pytest.raises(ConfigError, match=r"resilience\.fallbacks\[0\]\.True: .*quote it"):
        validate(yaml.safe_load(bare))


def test_yaml_12_booleans_still_set_boolean_settings(tmp_path: Path):
    path = tmp_path / "podium.yaml"
    path.write_text("ledger: {enabled: off}\ngateway: {cache: {enabled: yes}}\ntelemetry: {enabled: false}\n")
    settings = load_settings(path, env={})
    assert settings.ledger_path is None and settings.gateway.cache.enabled is True
    assert settings.telemetry.enabled is False
