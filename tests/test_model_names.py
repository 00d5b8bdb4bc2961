"""A model named the way a client names it: Podium's name, an alias, the vendor's id or ``provider/model_id``.

The catalogue's resolution order (name, alias, ``provider/…``, vendor id) and its ambiguity rule, the
bundled rows' price provenance, the config's spellings rewritten to catalogue names, and through the
gateway in-process: a key's scope and the request's regions judge the model a spelling means, so a
vendor id neither escapes a scope nor is refused by one it belongs to.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import SCRIPTED_CONFIG
from podium.catalogue import Catalogue, ModelInfo, bundled_catalogue
from podium.client import Podium
from podium.config import load_settings
from podium.errors import BadRequestError, ConfigError, NotFoundError
from podium.server.app import create_app
from podium.server.keys import KeyStore
from test_cli import run

REFRESHED = date(2026, 11, 26)  # the day this catalogue refresh read its sources


def row(name: str, provider: str, model_id: str | None = None, **fields: Any) -> ModelInfo:
    return ModelInfo(name=name, provider=provider, model_id=model_id or name, display_name=name, context_window=1000,
                     input_price=1.0, output_price=2.0, tier="fast", region="us", **fields)


# --- resolution order ------------------------------------------------------------------------------
def test_every_spelling_of_a_bundled_model_reaches_its_row():
    catalogue = bundled_catalogue()
    for spelling in ("claude-opus-4-5", "claude-opus-4-5-20251101", "anthropic/claude-opus-4-5-20251101",
                     "anthropic/claude-opus-4-5"):
        assert catalogue.get(spelling).name == "claude-opus-4-5", spelling
    assert catalogue.get("gpt-4o-mini-2024-07-18").name == "gpt-4o-mini"  # a vendor snapshot, as an alias
    assert catalogue.get("openai/gpt-4o-mini-2024-07-18").name == "gpt-4o-mini"
    assert catalogue.get("ollama/llama3.2:3b").name == "llama3.2"
    assert catalogue.get("llama3.2:3b").name == "llama3.2"
    assert catalogue.get("local/smollm2").name == "smollm2-135m"  # provider/alias


def test_a_provider_prefix_picks_that_providers_row_before_another_rows_wire_id():
    catalogue = bundled_catalogue()
    # OpenRouter's row sends the wire id "openai/gpt-4o-mini", but the prefix names OpenAI's row
    assert catalogue.get("openai/gpt-4o-mini").provider == "openai"
    assert catalogue.get("openrouter/openai/gpt-4o-mini").name == "openrouter/gpt-4o-mini"
    assert catalogue.get("openrouter/gpt-4o-mini").name == "openrouter/gpt-4o-mini"
    # an id no row of the prefixed provider sends is still another row's exact wire id
    assert catalogue.get("anthropic/claude-sonnet-4.5").name == "openrouter/claude-sonnet-4.5"
    assert catalogue.get("meta-llama/llama-3.3-70b-instruct").name == "openrouter/llama-3.3-70b"


def test_names_and_aliases_win_over_vendor_ids():
    catalogue = Catalogue([row("fast", "a", "big-1"), row("big-1", "b", "big-2"),
                           row("c", "a", "c-9", aliases=("big-2",))])
    assert catalogue.get("big-1").name == "big-1"  # a name beats another row's vendor id
    assert catalogue.get("big-2").name == "c"  # an alias beats another row's vendor id
    assert catalogue.get("a/big-1").name == "fast"  # but a provider prefix looks among that provider's rows
    assert catalogue.get("b/big-2").name == "big-1"


def test_a_vendor_id_two_rows_send_is_ambiguous_and_each_row_is_named_by_prefix():
    catalogue = Catalogue([row("gpt-x", "openai", "gpt-x-2026"), row("gpt-x-eu", "azure", "gpt-x-2026"),
                           row("gpt-x-eu-2", "azure", "gpt-x-2026")])
    assert catalogue.find("gpt-x-2026") is None
    assert "gpt-x-2026" not in catalogue
    with pytest.raises(BadRequestError, match=r"ambiguous.*'gpt-x' \(openai\), 'gpt-x-eu' \(azure\)") as caught:
        catalogue.get("gpt-x-2026")
    assert caught.value.code == "model_ambiguous" and caught.value.status == 400
    assert catalogue.get("openai/gpt-x-2026").name == "gpt-x"
    with pytest.raises(BadRequestError, match=r"'gpt-x-eu' .*'gpt-x-eu-2'"):
        catalogue.get("azure/gpt-x-2026")  # two rows of the same provider: only their names tell them apart
    assert [m.name for m in catalogue.candidates("gpt-x-2026")] == ["gpt-x", "gpt-x-eu", "gpt-x-eu-2"]
    assert catalogue.get("gpt-x-eu-2").provider == "azure"


def test_the_bundled_catalogue_shares_one_vendor_id_only_where_documented():
    catalogue = bundled_catalogue()
    shared = {m.model_id for m in catalogue if len(catalogue.candidates(m.model_id)) > 1}
    assert shared == {"smollm2-135m-instruct"}  # the local chat model and its embedding row
    with pytest.raises(BadRequestError, match="'smollm2-135m' \\(local\\), 'smollm2-135m-embed' \\(local\\)"):
        catalogue.get("smollm2-135m-instruct")


def test_unknown_spellings_suggest_the_nearest_spelling_of_the_same_kind():
    catalogue = bundled_catalogue()
    with pytest.raises(NotFoundError, match="Did you mean: openai/gpt-4o-mini"):
        catalogue.get("openai/gpt-4o-mni")
    with pytest.raises(NotFoundError, match="Did you mean: claude-opus-4-5-20251101"):
        catalogue.get("claude-opus-4-5-2025110")
    with pytest.raises(NotFoundError, match=r"Unknown model 'x{100}…'"):
        catalogue.get("x" * 5000)
    assert catalogue.find("unknown/gpt-4o-mini") is None  # an unknown prefix is part of the id, not stripped


# --- price provenance ------------------------------------------------------------------------------
def test_every_priced_bundled_row_names_its_source_and_date():
    for model in bundled_catalogue():
        if model.input_price == 0 and model.output_price == 0:
            continue
        assert model.price_source, model.name
        assert re.match(r"https://\S+$", model.price_source) or model.price_source.startswith("unverified: "), \
            (model.name, model.price_source)
        assert model.price_checked is not None, model.name
        assert date(2025, 1, 1) <= model.price_checked <= REFRESHED, (model.name, model.price_checked)


def test_superseded_rows_name_a_current_row_of_the_same_provider():
    catalogue = bundled_catalogue()
    for model in catalogue:
        if model.superseded_by is None:
            continue
        successor = catalogue.find(model.superseded_by)
        assert successor is not None, model.name
        assert successor.superseded_by is None and successor.provider == model.provider, model.name


def test_the_catalogue_lists_each_vendors_current_models():
    catalogue = bundled_catalogue()
    current = {m.name for m in catalogue if m.superseded_by is None}
    assert {"gpt-6.2-astra", "gpt-6.2-sol", "gpt-6.1-terra", "gpt-6-luna"} <= current
    assert {"claude-fable-5-1", "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"} <= current
    assert {"gemini-4-neon", "gemini-4-carbon", "gemini-4-hydrogen", "gemini-3.5-flash-lite"} <= current
    assert {"mistral-medium", "codestral", "deepseek-flash"} <= current
    for provider in ("openai", "anthropic", "gemini", "mistral", "deepseek"):
        tiers = {m.tier for m in catalogue if m.provider == provider and m.superseded_by is None and m.has("chat")}
        assert tiers, provider


def test_overriding_a_price_drops_the_bundled_source_unless_a_new_one_is_given():
    base = bundled_catalogue()
    merged = base.merged({"gpt-4o": {"input_price": 1.0}, "gpt-4o-mini": {"output_price": 9.0,
                          "price_source": "https://example.test/our-contract", "price_checked": "2026-11-01"},
                          "gpt-5": {"context_window": 1000}})
    assert merged.get("gpt-4o").price_source == "config (models.gpt-4o)"
    assert merged.get("gpt-4o").price_checked is None
    assert merged.get("gpt-4o-mini").price_source == "https://example.test/our-contract"
    assert merged.get("gpt-4o-mini").price_checked == date(2026, 11, 1)
    assert merged.get("gpt-5").price_source == base.get("gpt-5").price_source  # no price changed


# --- the config ------------------------------------------------------------------------------------
def canned(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """Two scripted providers; `echo` and `echo-mirror` send the same vendor id, so that id alone is ambiguous."""
    def model(provider: str, model_id: str, region: str, caps: list[str] | None = None) -> dict[str, Any]:
        return {"provider": provider, "model_id": model_id, "context_window": 8000, "input_price": 1.0,
                "output_price": 2.0, "tier": "fast", "region": region, "max_output_tokens": 100,
                "capabilities": caps or ["chat"]}

    return {
        "providers": {"canned": {"kind": "scripted", "options": {"answers": {"echo-2026-01-01": "from canned",
                                                                             "other-1": "other"}}},
                      "mirror": {"kind": "scripted", "options": {"answers": {"echo-2026-01-01": "from mirror"}}},
                      "local": {"enabled": False}},
        "models": {"echo": model("canned", "echo-2026-01-01", "eu"),
                   "echo-mirror": model("mirror", "echo-2026-01-01", "us"),
                   "other": model("canned", "other-1", "eu")},
        "resilience": {"retries": {"max_attempts": 1}},
        "gateway": {"admin_key": "admin-secret-0123456789", "keys_path": str(tmp_path / "keys.sqlite3")},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
        **extra,
    }


def settings_of(tmp_path: Path, data: dict[str, Any]) -> Any:
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(data))
    return load_settings(path)


def test_config_spellings_become_catalogue_names(tmp_path: Path):
    settings = settings_of(tmp_path, canned(
        tmp_path,
        routing={"default": "canned/echo-2026-01-01", "baseline_model": "openai/gpt-4o-mini-2024-07-18",
                 "rules": [{"task_type": "code", "model": "mirror/echo-2026-01-01"}]},
        deployments={"canned/echo": [{"provider": "mirror", "model_id": "echo-2026-01-01"}]},
        resilience={"retries": {"max_attempts": 1},
                    "fallbacks": [{"model": "canned/echo-2026-01-01", "to": ["mirror/echo-2026-01-01", "other-1"]}],
                    "emergency": [{"provider": "canned", "to": ["mirror/echo-2026-01-01"]}]},
        strategies={"panel": {"type": "consensus", "models": ["canned/echo-2026-01-01", "other-1", "panel2"]},
                    "panel2": {"type": "vote", "models": ["mirror/echo-2026-01-01", "vote:other-1,echo"]}}))
    assert settings.default_model == "echo" and settings.routing.default == "echo"
    assert settings.routing.baseline_model == "gpt-4o-mini"
    assert [r.model for r in settings.routing.rules] == ["echo-mirror"]
    assert list(settings.deployments) == ["echo"]
    fallback = settings.resilience.fallbacks[0]
    assert (fallback.model, fallback.to) == ("echo", ["echo-mirror", "other"])
    assert settings.resilience.emergency[0].to == ["echo-mirror"]
    assert settings.strategies["panel"].models == ["echo", "other", "panel2"]  # a strategy's name stays
    assert settings.strategies["panel2"].models == ["echo-mirror", "vote:other-1,echo"]  # inline: resolved at run time


def test_config_refuses_an_ambiguous_spelling_and_two_keys_for_one_model(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"ambiguous.*'echo' \(canned\), 'echo-mirror' \(mirror\)") as caught:
        settings_of(tmp_path, canned(tmp_path, routing={"default": "echo-2026-01-01"}))
    assert caught.value.key_path == "routing.default"
    with pytest.raises(ConfigError, match="'echo' and 'canned/echo-2026-01-01' both name model 'echo'"):
        settings_of(tmp_path, canned(tmp_path, deployments={
            "echo": [{"provider": "canned"}], "canned/echo-2026-01-01": [{"provider": "mirror"}]}))


def test_a_config_override_may_name_its_own_price_source(tmp_path: Path):
    data = canned(tmp_path)
    data["models"]["gpt-4o"] = {"input_price": 2.0, "price_source": "contract 2026-11", "price_checked": "2026-11-02"}
    data["models"]["gpt-4o-mini"] = {"input_price": 0.1}
    catalogue = settings_of(tmp_path, data).catalogue
    assert (catalogue.get("gpt-4o").price_source, catalogue.get("gpt-4o").price_checked) == \
        ("contract 2026-11", date(2026, 11, 2))
    assert catalogue.get("openai/gpt-4o-mini").price_source == "config (models.gpt-4o-mini)"
    assert catalogue.get("echo").price_source is None  # a row the config adds names a source only if it gives one


def test_the_embedding_model_may_be_named_by_vendor_id(tmp_path: Path):
    data = canned(tmp_path, routing={"embedding_model": "openai/text-embedding-3-small"})
    assert settings_of(tmp_path, data).embedding_model == "text-embedding-3-small"


# --- through the gateway ---------------------------------------------------------------------------
HI = [{"role": "user", "content": "hi"}]


class Gateway:
    def __init__(self, tmp_path: Path, data: dict[str, Any]) -> None:
        settings = settings_of(tmp_path, data)
        self.podium = Podium(settings)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, podium=self.podium)),
                                      base_url="http://gw")
        self.keys = KeyStore(tmp_path / "keys.sqlite3")

    async def ask(self, key: str, model: str, **headers: str) -> httpx.Response:
        return await self.http.post("/v1/chat/completions", json={"model": model, "messages": HI},
                                    headers={"authorization": f"Bearer {key}", **headers})

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.podium.aclose()


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = Gateway(tmp_path, canned(tmp_path, strategies={
        "panel": {"type": "consensus", "models": ["canned/echo-2026-01-01", "canned/other-1", "echo"]}}))
    yield gateway
    await gateway.aclose()


def answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text = response.json()["choices"][0]["message"]["content"]
    assert isinstance(text, str)
    return text


async def test_a_key_scoped_to_a_model_may_use_every_spelling_of_it_and_nothing_else(gw: Gateway):
    key, _ = gw.keys.create("scoped", models=["echo"])
    for spelling in ("echo", "canned/echo-2026-01-01", "canned/echo"):
        assert answer(await gw.ask(key, spelling)) == "from canned", spelling
    for spelling in ("mirror/echo-2026-01-01", "echo-mirror", "other", "canned/other-1", "other-1"):
        refused = await gw.ask(key, spelling)
        assert refused.status_code == 403, (spelling, refused.text)
        assert refused.json()["error"]["code"] != "model_ambiguous"
    ambiguous = await gw.ask(key, "echo-2026-01-01")
    assert ambiguous.status_code == 400
    assert ambiguous.json()["error"]["code"] == "model_ambiguous"
    assert "'echo' (canned), 'echo-mirror' (mirror)" in ambiguous.json()["error"]["message"]
    assert [c.model for c in gw.podium.registry.get_provider("mirror").calls] == []  # type: ignore[attr-defined]


async def test_a_scope_written_with_vendor_ids_is_not_refused_for_the_podium_name(gw: Gateway):
    key, _ = gw.keys.create("by-id", models=["canned/echo-2026-01-01"])
    assert answer(await gw.ask(key, "echo")) == "from canned"
    assert answer(await gw.ask(key, "canned/echo")) == "from canned"
    assert (await gw.ask(key, "other")).status_code == 403
    assert (await gw.ask(key, "mirror/echo-2026-01-01")).status_code == 403


async def test_a_strategy_whose_members_are_vendor_ids_stays_inside_its_scope(gw: Gateway):
    key, _ = gw.keys.create("panel", models=["panel"])
    assert (await gw.ask(key, "panel")).status_code == 200
    narrow, _ = gw.keys.create("narrow", models=["echo"])
    inline = await gw.ask(narrow, "consensus:canned/echo-2026-01-01,mirror/echo-2026-01-01")
    assert inline.status_code == 403


async def test_regions_judge_the_row_a_spelling_names(gw: Gateway):
    key, _ = gw.keys.create("any")
    confidential = {"x-podium-sensitivity": "confidential"}  # EU, CH or local only
    assert answer(await gw.ask(key, "canned/echo-2026-01-01", **confidential)) == "from canned"  # echo runs in the EU
    refused = await gw.ask(key, "mirror/echo-2026-01-01", **confidential)  # the same vendor id, served in the US
    assert refused.status_code == 403, refused.text
    assert answer(await gw.ask(key, "mirror/echo-2026-01-01")) == "from mirror"


async def test_admin_keys_accept_vendor_ids_and_refuse_ambiguous_ones(gw: Gateway):
    admin = {"authorization": "Bearer admin-secret-0123456789"}
    made = await gw.http.post("/admin/keys", json={"name": "ok", "models": ["canned/echo-2026-01-01"]}, headers=admin)
    assert made.status_code in (200, 201), made.text
    refused = await gw.http.post("/admin/keys", json={"name": "bad", "models": ["echo-2026-01-01"]}, headers=admin)
    assert refused.status_code == 400
    assert "ambiguous" in refused.json()["error"]["message"]


# --- the CLI -----------------------------------------------------------------------------------------
def test_the_cli_takes_vendor_ids_for_model_and_models(scripted_config: Path, tmp_path: Path):
    asked = run("ask", "hi", "--json", "--model", "canned/pricey-1", cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert data["model"] == "pricey" and data["text"] == "Paris is the capital of France."
    voted = run("ask", "hi", "--json", "--strategy", "vote", "--models", "cheap-1,canned/pricey-1", cwd=tmp_path)
    assert voted.returncode == 0, voted.stderr
    assert {call["model"] for call in json.loads(voted.stdout)["trace"]["calls"]} == {"cheap", "pricey"}
    keys = tmp_path / "keys.yaml"
    keys.write_text(yaml.safe_dump({**SCRIPTED_CONFIG, "gateway": {"keys_path": str(tmp_path / "keys.sqlite3")},
                                    "ledger": {"enabled": False}}), encoding="utf-8")
    made = run("keys", "create", "k", "--models", "canned/cheap-1,pricey-1", "--config", str(keys), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert KeyStore(tmp_path / "keys.sqlite3").list()[0].models == ("canned/cheap-1", "pricey-1")
    typo = run("keys", "create", "t", "--models", "canned/cheap-2", "--config", str(keys), cwd=tmp_path)
    assert typo.returncode != 0 and "Did you mean: canned/cheap-1" in typo.stderr + typo.stdout
