import pytest

from podium.catalogue import Catalogue, ModelInfo, approximate_tokens, bundled_catalogue, count_message_tokens
from podium.config import known_hosts
from podium.errors import ConfigError, NotFoundError
from podium.types import Message


def test_bundled_catalogue_covers_the_vendors_and_local_models():
    catalogue = bundled_catalogue()
    providers = {m.provider for m in catalogue}
    assert {"openai", "anthropic", "gemini", "mistral", "deepseek", "openrouter", "publicai", "local"} <= providers
    local = [m for m in catalogue if m.local and m.provider == "local"]
    assert {m.name for m in local} == {"smollm2-135m", "gemma3-270m", "smollm2-135m-embed", "minilm-l6"}
    assert catalogue.get("gemma3-270m").prompt_format == "completion"
    assert catalogue.get("smollm2-135m").prompt_format == "chat"


def test_every_bundled_row_names_a_known_provider_and_sane_prices():
    hosts = known_hosts()
    for model in bundled_catalogue():
        assert model.provider in hosts, model.name
        assert model.local == (model.region == "local"), model.name
        if model.cached_input_price is not None:
            assert model.cached_input_price <= model.input_price, model.name
        if model.max_output_tokens is not None:
            assert model.max_output_tokens <= model.context_window, model.name


def test_estimated_cost_uses_prices_per_million_and_cached_input():
    gpt4o = bundled_catalogue().get("gpt-4o")
    assert gpt4o.estimated_cost(1_000_000, 0) == pytest.approx(2.50)
    assert gpt4o.estimated_cost(1000, 500) == pytest.approx((1000 * 2.5 + 500 * 10) / 1e6)
    # half the input served from cache at $1.25/M
    assert gpt4o.estimated_cost(1000, 0, cached_input_tokens=500) == pytest.approx((500 * 2.5 + 500 * 1.25) / 1e6)
    # a model without a cached price bills cached tokens at the normal input price
    mistral = bundled_catalogue().get("mistral-small")
    assert mistral.estimated_cost(1000, 0, 400) == mistral.estimated_cost(1000, 0)


def test_unknown_model_suggests_close_names():
    with pytest.raises(NotFoundError, match="Did you mean: gpt-4o-mini"):
        bundled_catalogue().get("gpt-4o-mni")
    with pytest.raises(NotFoundError, match="podium models"):
        bundled_catalogue().get("zzzzzz")


def test_aliases_resolve_to_rows():
    assert bundled_catalogue().get("smollm2").name == "smollm2-135m"


def test_overrides_change_fields_and_add_rows():
    base = bundled_catalogue()
    merged = base.merged({
        "gpt-4o": {"input_price": 1.0},
        "mine": {"provider": "local", "context_window": 2048, "input_price": 0, "output_price": 0,
                 "tier": "fast", "region": "local", "local": True},
    })
    assert merged.get("gpt-4o").input_price == 1.0
    assert merged.get("gpt-4o").output_price == base.get("gpt-4o").output_price
    assert merged.get("mine").model_id == "mine"
    assert base.get("gpt-4o").input_price == 2.50  # the bundled catalogue is untouched


def test_incomplete_new_row_names_the_missing_field():
    with pytest.raises(ConfigError, match=r"models\.mine\.context_window"):
        Catalogue([]).merged({"mine": {"provider": "local", "input_price": 0, "output_price": 0, "tier": "fast",
                                       "region": "local"}})


def test_token_approximation_is_documented_rule():
    assert approximate_tokens("") == 0
    assert approximate_tokens("abcd") == 1
    assert approximate_tokens("abcde") == 2
    messages = [Message.system("abcd" * 10), Message.user("abcd" * 5)]
    assert count_message_tokens(messages, None) == (10 + 4) + (5 + 4) + 3


def test_blended_price_and_tier_rank():
    m = ModelInfo(name="x", provider="p", model_id="x", display_name="x", context_window=10, input_price=1,
                  output_price=5, tier="advanced", region="us")
    assert m.blended_price == pytest.approx(2.0)
    assert m.tier_rank == 3
