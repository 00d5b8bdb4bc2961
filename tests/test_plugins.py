"""A third-party provider arrives through the entry point group, with no change to Podium."""

import sys
import textwrap
from pathlib import Path

import pytest

from podium.client import Podium
from podium.config import load_settings
from podium.errors import ConfigError
from podium.providers.plugins import available_kinds, build_provider


@pytest.fixture
def acme_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "acme_podium").mkdir(parents=True)
    (site / "acme_podium" / "__init__.py").write_text(textwrap.dedent("""
        from podium.providers.scripted import ScriptedProvider

        def make_provider(spec):
            return ScriptedProvider(spec.name, default="hello from acme " + spec.options.get("flavour", ""))

        def make_broken(spec):
            return object()
    """))
    dist = site / "acme_podium-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-podium\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[podium.providers]\nacme = acme_podium:make_provider\nbroken = acme_podium:make_broken\n"
        "local = acme_podium:make_broken\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("acme_podium", None)


async def test_entry_point_provider_serves_requests(acme_plugin, tmp_path: Path):
    assert "acme" in available_kinds()
    config = tmp_path / "podium.yaml"
    config.write_text(textwrap.dedent("""
        providers:
          acme-cloud: {kind: acme, options: {flavour: vanilla}}
        models:
          acme-1: {provider: acme-cloud, context_window: 1000, input_price: 0, output_price: 0,
                   tier: fast, region: eu}
        ledger: {enabled: false}
    """))
    async with Podium(load_settings(config)) as podium:
        response = await podium.chat("hi", model="acme-1")
    assert response.text == "hello from acme vanilla"
    assert response.provider == "acme-cloud"


def test_plugin_returning_a_non_provider_is_a_config_error(acme_plugin):
    from podium.config import ProviderSpec

    with pytest.raises(ConfigError, match="does not implement the Provider protocol"):
        build_provider(ProviderSpec(name="x", kind="broken", enabled=True, reason="test"))


def test_plugin_cannot_replace_a_builtin_kind(acme_plugin):
    from podium.config import ProviderSpec
    from podium.providers.local.provider import LocalProvider

    assert isinstance(build_provider(ProviderSpec(name="local", kind="local", enabled=True, reason="t")),
                      LocalProvider)


def test_unknown_kind_lists_the_available_ones():
    from podium.config import ProviderSpec

    with pytest.raises(ConfigError, match=r"providers\.x\.kind.*available: .*local"):
        build_provider(ProviderSpec(name="x", kind="nope", enabled=True, reason="t"))
