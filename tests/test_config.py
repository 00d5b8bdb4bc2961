from pathlib import Path

import pytest

from podium.config import find_config_path, load_config, load_settings, resolve
from podium.config.loader import expand_env, validate
from podium.config.template import TEMPLATE
from podium.errors import ConfigError


def test_unknown_key_names_the_path_and_the_allowed_keys(tmp_path: Path):
    path = tmp_path / "podium.yaml"
    path.write_text("providers:\n  openai:\n    api_kye: sk-test\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.key_path == "providers.openai.api_kye"
    assert "api_key" in info.value.message  # the list of expected keys


def test_wrong_type_names_the_path():
    with pytest.raises(ConfigError, match=r"routing\.rules\[0\]\.model"):
        validate({"routing": {"rules": [{"task_type": "code"}]}})
    with pytest.raises(ConfigError, match=r"defaults\.max_tokens"):
        validate({"defaults": {"max_tokens": 0}})


def test_env_expansion_with_defaults_and_missing_variables():
    env = {"KEY": "secret", "EMPTY": ""}
    assert expand_env({"a": "${KEY}", "b": ["x-${KEY}-y"], "c": "${MISSING:-fallback}", "d": "${EMPTY:-d}"},
                      env) == {"a": "secret", "b": ["x-secret-y"], "c": "fallback", "d": "d"}
    with pytest.raises(ConfigError, match=r"providers\.openai\.api_key: environment variable NOPE is not set"):
        expand_env({"providers": {"openai": {"api_key": "${NOPE}"}}}, env)


def test_search_order_flag_env_cwd_user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    user_dir = tmp_path / "xdg-config" / "podium"
    user_dir.mkdir(parents=True)
    (user_dir / "podium.yaml").write_text("version: 1\n")
    assert find_config_path(None, env={}) == user_dir / "podium.yaml"
    (tmp_path / "podium.yaml").write_text("version: 1\n")
    assert find_config_path(None, env={}) == tmp_path / "podium.yaml"
    other = tmp_path / "other.yaml"
    other.write_text("version: 1\n")
    assert find_config_path(None, env={"PODIUM_CONFIG": str(other)}) == other
    flag = tmp_path / "flag.yaml"
    flag.write_text("version: 1\n")
    assert find_config_path(flag, env={"PODIUM_CONFIG": str(other)}) == flag
    with pytest.raises(ConfigError, match="does not exist"):
        find_config_path(tmp_path / "missing.yaml", env={})


def test_no_file_means_local_defaults():
    settings = resolve(validate({}), None, env={})
    assert settings.default_model == "smollm2-135m"
    assert settings.providers["local"].enabled
    assert not settings.providers["openai"].enabled
    assert "OPENAI_API_KEY" in settings.providers["openai"].reason


def test_remote_providers_switch_on_with_their_key_and_follow_base_url_env():
    settings = resolve(validate({}), None, env={"ANTHROPIC_API_KEY": "sk-ant-x", "OPENAI_BASE_URL": "http://proxy/v1",
                                               "OLLAMA_HOST": "http://127.0.0.1:9999"})
    anthropic = settings.providers["anthropic"]
    assert anthropic.enabled and anthropic.api_key == "sk-ant-x" and "ANTHROPIC_API_KEY" in anthropic.reason
    assert "sk-ant-x" not in repr(anthropic)
    assert settings.providers["openai"].base_url == "http://proxy/v1"
    assert not settings.providers["openai"].enabled
    assert settings.providers["ollama"].enabled and settings.providers["ollama"].base_url == "http://127.0.0.1:9999"


def test_model_referring_to_missing_provider_names_both():
    config = validate({"models": {"mine": {"provider": "nowhere", "context_window": 10, "input_price": 0,
                                           "output_price": 0, "tier": "fast", "region": "local"}}})
    with pytest.raises(ConfigError) as info:
        resolve(config, None, env={})
    assert info.value.key_path == "models.mine.provider"
    assert "'mine'" in info.value.message and "'nowhere'" in info.value.message


def test_unknown_provider_needs_a_kind_and_rules_need_real_models():
    with pytest.raises(ConfigError, match=r"providers\.acme\.kind"):
        resolve(validate({"providers": {"acme": {"base_url": "http://x"}}}), None, env={})
    with pytest.raises(ConfigError, match=r"routing\.rules\[0\]\.model: Unknown model 'gpt-4o-mni'.*gpt-4o-mini"):
        resolve(validate({"routing": {"rules": [{"task_type": "code", "model": "gpt-4o-mni"}]}}), None, env={})


def test_bad_yaml_reports_the_line(tmp_path: Path):
    path = tmp_path / "podium.yaml"
    path.write_text("providers:\n  openai: [\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(path, env={})


def test_init_template_is_valid_and_resolves(tmp_path: Path):
    path = tmp_path / "podium.yaml"
    path.write_text(TEMPLATE)
    settings = load_settings(path, env={})
    assert settings.default_model == "smollm2-135m"
    assert settings.providers["local"].options["n_ctx"] == 4096


def test_init_template_names_the_dashboard_section_and_its_keys_are_real(tmp_path: Path):
    """The commented ``dashboard:`` block, uncommented, is a valid section (a typo there would be a ConfigError)
    that does what its comments say; and the comment says who may look (the scope)."""
    lines = TEMPLATE.splitlines()
    start = lines.index("# dashboard:")
    block = [line.removeprefix("# ") for line in lines[start:]]
    block = block[:next(i for i, line in enumerate(block) if not line.strip())]
    assert "`dashboard`" in "\n".join(lines[start - 3:start])  # the scope a non-admin key needs
    path = tmp_path / "podium.yaml"
    path.write_text("\n".join(block).replace("enabled: true", "enabled: false").replace("30", "5") + "\n")
    settings = load_settings(path, env={})
    assert settings.dashboard.enabled is False and settings.dashboard.refresh_seconds == 5


def test_init_template_names_the_work_section_and_its_keys_are_real(tmp_path: Path):
    """The commented ``work:`` block, uncommented, is a valid section naming real models."""
    lines = TEMPLATE.splitlines()
    start = lines.index("# work:")
    block = [line.removeprefix("# ") for line in lines[start:]]
    block = block[:next(i for i, line in enumerate(block) if not line.strip())]
    path = tmp_path / "podium.yaml"
    path.write_text("\n".join(block) + "\n")
    settings = load_settings(path, env={})
    assert settings.work.preset == "team" and settings.work.presets["team"].worker == ["deepseek-chat",
                                                                                       "mistral-small"]
    assert settings.work.agents["aider"].command[0] == "aider" and settings.work.budget == 5.0
    for role in ("conductor", "worker", "reviewer"):
        for name in getattr(settings.work.presets["team"], role):
            assert settings.catalogue.find(name) is not None, name
