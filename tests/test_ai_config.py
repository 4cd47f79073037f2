"""RUNNER_AI_* configuration, model selection and argument checking, with no server."""
from __future__ import annotations

import pytest

from runner.ai import AIClient, AISettings as AIConfig, VARIABLES, client_from_environment, model_for
from runner.ai import settings_from_environment as config_from_environment

URL = "http://127.0.0.1:8000/v1"


def test_without_a_url_the_provider_is_echo():
    config = config_from_environment({})
    assert (config.provider, config.base_url, config.default_model) == ("echo", None, "echo")
    assert config.max_concurrency == 8 and config.requests_per_minute is None and config.tokens_per_minute is None
    assert (config.connect_timeout, config.read_timeout) == (10.0, 120.0)


def test_with_a_url_the_provider_defaults_to_openai():
    config = config_from_environment({"RUNNER_AI_SERVICE_URL": URL + "/"})
    assert (config.provider, config.base_url, config.default_model) == ("openai", URL, "gpt-4o-mini")


def test_every_variable_is_read():
    config = config_from_environment({
        "RUNNER_AI_SERVICE_URL": URL, "RUNNER_AI_PROVIDER": "Anthropic", "RUNNER_AI_API_KEY": "k",
        "RUNNER_AI_MODEL": "claude-x", "RUNNER_AI_MAX_CONCURRENCY": "3", "RUNNER_AI_REQUESTS_PER_MINUTE": "60",
        "RUNNER_AI_TOKENS_PER_MINUTE": "1000", "RUNNER_AI_CONNECT_TIMEOUT": "1.5", "RUNNER_AI_READ_TIMEOUT": "30",
    })
    assert config == AIConfig(provider="anthropic", base_url=URL, api_key="k", model="claude-x", max_concurrency=3,
                              requests_per_minute=60, tokens_per_minute=1000, connect_timeout=1.5, read_timeout=30.0)
    assert set(VARIABLES) == {
        "RUNNER_AI_SERVICE_URL", "RUNNER_AI_PROVIDER", "RUNNER_AI_API_KEY", "RUNNER_AI_MODEL",
        "RUNNER_AI_MAX_CONCURRENCY", "RUNNER_AI_REQUESTS_PER_MINUTE", "RUNNER_AI_TOKENS_PER_MINUTE",
        "RUNNER_AI_CONNECT_TIMEOUT", "RUNNER_AI_READ_TIMEOUT", "RUNNER_AI_CA_FILE"}


@pytest.mark.parametrize("name, value", [
    ("RUNNER_AI_PROVIDER", "gemini"),
    ("RUNNER_AI_MAX_CONCURRENCY", "0"),
    ("RUNNER_AI_MAX_CONCURRENCY", "many"),
    ("RUNNER_AI_REQUESTS_PER_MINUTE", "-5"),
    ("RUNNER_AI_TOKENS_PER_MINUTE", "1.5"),
    ("RUNNER_AI_CONNECT_TIMEOUT", "0"),
    ("RUNNER_AI_READ_TIMEOUT", "nan"),
    ("RUNNER_AI_READ_TIMEOUT", "soon"),
    ("RUNNER_AI_SERVICE_URL", "ftp://example.com/v1"),
    ("RUNNER_AI_SERVICE_URL", "127.0.0.1:8000/v1"),
])
def test_an_invalid_value_names_its_variable(name, value):
    environ = {"RUNNER_AI_SERVICE_URL": URL, name: value}
    with pytest.raises(ValueError, match=name):
        config_from_environment(environ)


def test_a_provider_needing_a_service_without_a_url_is_an_error():
    with pytest.raises(ValueError, match="RUNNER_AI_PROVIDER='openai' needs RUNNER_AI_SERVICE_URL"):
        config_from_environment({"RUNNER_AI_PROVIDER": "openai"})


def test_a_bad_url_error_does_not_repeat_its_credentials():
    with pytest.raises(ValueError) as caught:
        config_from_environment({"RUNNER_AI_SERVICE_URL": "ftp://user:hunter2@example.com/v1"})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("key", ["sk-SECRET\nX", "sk-SECRET\tsecond", "sk-SECRET\r\nX-Evil: 1", "sk-SECRET\x7f",
                                 "sk-SECRET\x00", "sk-SECRET\u00e9", "sk-SECRET\u200b", "sk-SECRET\x85X"])
def test_an_api_key_that_cannot_be_a_header_is_refused_without_showing_it(key):
    # requests would refuse it later with a message quoting the header, key and all.
    with pytest.raises(ValueError, match="RUNNER_AI_API_KEY") as caught:
        config_from_environment({"RUNNER_AI_SERVICE_URL": URL, "RUNNER_AI_API_KEY": key})
    assert "SECRET" not in str(caught.value)
    with pytest.raises(ValueError, match="RUNNER_AI_API_KEY") as caught:
        AIConfig(provider="anthropic", base_url=URL, api_key=key)
    assert "SECRET" not in str(caught.value)


def test_an_api_key_of_printable_ascii_is_accepted():
    key = "sk-proj_AZaz09 -./:=+~!\\\"'"
    assert config_from_environment({"RUNNER_AI_SERVICE_URL": URL, "RUNNER_AI_API_KEY": key}).api_key == key


def test_client_from_environment_uses_the_variables():
    client = client_from_environment({"RUNNER_AI_SERVICE_URL": "http://user:hunter2@127.0.0.1:9/v1",
                                      "RUNNER_AI_API_KEY": "sk-secret"})
    assert client.provider == "openai"
    assert repr(client) == "AIClient(provider='openai', url='http://127.0.0.1:9/v1/chat/completions', model='gpt-4o-mini')"
    client.close()


# -- model selection -------------------------------------------------------------------------

METADATA = {"model": "alt-model", "persona_models": {"critic": "critic-model"}}


@pytest.mark.parametrize("parameters, metadata, persona, environ, expected", [
    ({"model": "task-model"}, METADATA, "critic", {"RUNNER_AI_MODEL": "env-model"}, "task-model"),
    ({}, METADATA, "critic", {"RUNNER_AI_MODEL": "env-model"}, "critic-model"),
    ({}, METADATA, "poet", {"RUNNER_AI_MODEL": "env-model"}, "alt-model"),
    ({}, METADATA, None, {}, "alt-model"),
    ({}, {"persona_models": {"critic": "critic-model"}}, None, {"RUNNER_AI_MODEL": "env-model"}, "env-model"),
    (None, None, None, {"RUNNER_AI_MODEL": " env-model "}, "env-model"),
    ({}, {}, None, {}, None),
])
def test_model_selection_order(parameters, metadata, persona, environ, expected):
    assert model_for(parameters, metadata, persona, environ) == expected


@pytest.mark.parametrize("parameters, metadata, where", [
    ({"model": 42}, {}, "parameters.model"),
    ({"model": "  "}, {}, "parameters.model"),
    ({}, {"model": ["a"]}, "metadata.model"),
    ({}, {"persona_models": "critic-model"}, "metadata.persona_models"),
    ({}, {"persona_models": {"critic": 1}}, "metadata.persona_models.critic"),
])
def test_a_model_of_the_wrong_type_is_an_error_naming_where(parameters, metadata, where):
    with pytest.raises(ValueError, match=where.replace(".", r"\.")):
        model_for(parameters, metadata, "critic", {})


# -- arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (dict(prompt=None), "prompt: expected a string"),
    (dict(prompt="x", sampling={"temperature": "hot"}), "sampling.temperature"),
    (dict(prompt="x", sampling={"temperature": True}), "sampling.temperature"),
    (dict(prompt="x", sampling={"max_tokens": 0}), "sampling.max_tokens"),
    (dict(prompt="x", sampling={"seed": 1.5}), "sampling.seed"),
    (dict(prompt="x", sampling={"frequency": 1}), "sampling.frequency: unknown setting"),
    (dict(prompt="x", sampling={"top_k": 0}), "sampling.top_k"),
    (dict(prompt="x", sampling={"stop": ""}), "sampling.stop"),
    (dict(prompt="x", sampling={"stop": ["a", 1]}), "sampling.stop"),
    (dict(prompt="x", sampling={"stop": ["a", "b", "c", "d", "e"]}), "sampling.stop"),
    (dict(prompt="x", sampling=[1]), "sampling: expected an object"),
    (dict(prompt="x", timeout=0), "timeout"),
    (dict(prompt="x", model=""), "model"),
])
def test_bad_arguments_are_value_errors(call, message):
    client = AIClient()
    prompt = call.pop("prompt")
    with pytest.raises(ValueError, match=message):
        client.complete(prompt, **call)


def test_a_prompt_that_is_not_unicode_text_is_refused_before_sending():
    client = AIClient(AIConfig(provider="openai", base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(ValueError, match="prompt: not valid Unicode text"):
        client.complete("bad \udcff surrogate")
    client.close()


def test_a_grpc_url_chooses_the_kserve_provider_which_has_no_default_model():
    config = config_from_environment({"RUNNER_AI_SERVICE_URL": "grpc://127.0.0.1:8001"})
    assert (config.provider, config.base_url, config.default_model) == ("kserve", "grpc://127.0.0.1:8001", None)


@pytest.mark.parametrize("environ, message", [
    ({"RUNNER_AI_SERVICE_URL": "grpc://127.0.0.1"}, "expected grpc://host:port"),
    ({"RUNNER_AI_SERVICE_URL": "grpc://127.0.0.1:8001/v2"}, "expected grpc://host:port"),
    ({"RUNNER_AI_SERVICE_URL": "grpc://127.0.0.1:8001", "RUNNER_AI_PROVIDER": "openai"},
     "AI provider 'openai' needs a http:// or https:// service URL"),
    ({"RUNNER_AI_SERVICE_URL": URL, "RUNNER_AI_PROVIDER": "kserve"},
     "AI provider 'kserve' needs a grpc:// or grpcs:// service URL"),
    ({"RUNNER_AI_SERVICE_URL": "grpc://127.0.0.1:8001", "RUNNER_AI_CA_FILE": __file__},
     "RUNNER_AI_CA_FILE is set, but the service URL is plain grpc://"),
    ({"RUNNER_AI_SERVICE_URL": "grpcs://127.0.0.1:8001", "RUNNER_AI_CA_FILE": "/no/such/ca.pem"},
     "RUNNER_AI_CA_FILE='/no/such/ca.pem': expected a readable file"),
])
def test_kserve_settings_that_cannot_work_are_refused(environ, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_from_environment(environ)


def test_the_names_before_the_rename_still_import_with_a_deprecation_warning():
    import runner.ai

    with pytest.warns(DeprecationWarning, match="AISettings"):
        from runner.ai import AIConfig as old_name
    assert old_name is runner.ai.AISettings
    with pytest.warns(DeprecationWarning, match="settings_from_environment"):
        assert runner.ai.config_from_environment is runner.ai.settings_from_environment
    with pytest.raises(AttributeError, match="no_such_name"):
        runner.ai.no_such_name
