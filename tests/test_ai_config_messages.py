"""Configuration messages name what is wrong: a CA file that holds no PEM certificate is
refused at configuration, a URL that cannot be parsed names its variable, and a kserve
server that never answers the check before a run is reported with the timeout that
actually ran out (RUNNER_AI_CONNECT_TIMEOUT), not the call's."""
from __future__ import annotations

import socket

import pytest

from runner import parse_alt_file
from runner.ai.settings import settings_from_environment as config_from_environment
from runner.ai.preflight import check_ai_service
from runner.last.delivery import settings_from_environment


def test_a_ca_file_without_a_pem_certificate_is_refused_at_configuration(tmp_path):
    ca = tmp_path / "hostname"
    ca.write_text("my-machine\n")
    with pytest.raises(ValueError, match=r"RUNNER_AI_CA_FILE='.*hostname': expected a readable file of PEM "
                                         r"certificates; it holds no '-----BEGIN CERTIFICATE-----' block"):
        config_from_environment({"RUNNER_AI_SERVICE_URL": "grpcs://127.0.0.1:8001", "RUNNER_AI_CA_FILE": str(ca)})


@pytest.mark.parametrize("url", ["grpc://[::1", "http://user:s3cret@[::1/v1"])
def test_an_unparsable_service_url_names_the_variable_not_the_value(url):
    with pytest.raises(ValueError) as raised:
        config_from_environment({"RUNNER_AI_SERVICE_URL": url})
    assert str(raised.value).startswith("RUNNER_AI_SERVICE_URL: not a URL (Invalid IPv6 URL)")
    assert "s3cret" not in str(raised.value)


def test_an_unparsable_nats_url_names_the_variable():
    with pytest.raises(ValueError) as raised:
        settings_from_environment({"RUNNER_NATS_URL": "nats://user:s3cret@[::1"})
    assert str(raised.value).startswith("RUNNER_NATS_URL: not a URL (Invalid IPv6 URL)")
    assert "s3cret" not in str(raised.value)


def test_a_silent_kserve_server_is_reported_with_the_check_timeout():
    pytest.importorskip("grpc")
    with socket.socket() as listener:       # accepts connections, never answers a byte
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        alt = parse_alt_file(b'{"id": "k", "title": "K", "tasks": [{"id": "a", "description": "A"}]}')
        environ = {"RUNNER_AI_SERVICE_URL": f"grpc://127.0.0.1:{port}", "RUNNER_AI_MODEL": "m",
                   "RUNNER_AI_CONNECT_TIMEOUT": "0.5", "RUNNER_AI_READ_TIMEOUT": "120"}
        with pytest.raises(ValueError) as raised:
            check_ai_service(alt, None, environ)
    message = str(raised.value)
    assert "timeout of 0.5 s" in message and "RUNNER_AI_CONNECT_TIMEOUT" in message, message
    assert "120" not in message
