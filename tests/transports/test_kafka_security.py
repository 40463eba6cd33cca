"""TLS and SASL settings become the same client options for Faust and for aiokafka.

No broker with a SASL or TLS listener runs in the tests: what is checked is the mapping
from SIA_KAFKA_* settings to client keyword arguments (and that they are what Faust itself
hands aiokafka for the same credentials), the refusal of combinations that cannot work,
and that the clients SIA makes are given them. PLAINTEXT against the real test broker is
covered by tests/transports/test_kafka_integration.py.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from typer.testing import CliRunner

from sia.cli import app
from sia.settings import SecretSettingError, Settings, get_settings
from sia.transports.kafka.security import client_options, describe, faust_credentials


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_plaintext_adds_nothing() -> None:
    plain = settings()
    assert client_options(plain) == {}
    assert faust_credentials(plain) is None
    assert describe(plain) == "PLAINTEXT"


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_gives_username_password_mechanism_and_a_verifying_context(
        mechanism: str) -> None:
    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=mechanism,
                 kafka_sasl_username="sia-prod", kafka_sasl_password="s3cr3t-value")
    options = client_options(s)
    context = options.pop("ssl_context")
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": mechanism,
                       "sasl_plain_username": "sia-prod", "sasl_plain_password": "s3cr3t-value"}
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert describe(s) == f"SASL_SSL, {mechanism} as sia-prod"
    assert "s3cr3t" not in repr(s)
    faust_side = credentials_to_aiokafka_auth(faust_credentials(s))
    assert isinstance(faust_side.pop("ssl_context"), ssl.SSLContext)
    assert faust_side == options  # the workers and the CLI's clients log in alike


def test_sasl_plaintext_has_no_tls() -> None:
    s = settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u",
                 kafka_sasl_password="p")
    options = client_options(s)
    assert options["security_protocol"] == "SASL_PLAINTEXT" and options["ssl_context"] is None
    faust_side = credentials_to_aiokafka_auth(faust_credentials(s))
    assert faust_side == options


def _certificate(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / "client.pem", folder / "client.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=sia-test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_ssl_with_a_ca_file_and_a_client_certificate(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    s = settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(cert),
                 kafka_ssl_certfile=str(cert), kafka_ssl_keyfile=str(key))
    options = client_options(s)
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    context = options["ssl_context"]
    # the CA file is the only trusted root: the system's were not loaded instead
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "sia-test"),),)]
    faust_side = credentials_to_aiokafka_auth(faust_credentials(s))
    assert faust_side["security_protocol"] == "SSL"
    assert faust_side["ssl_context"].get_ca_certs() == context.get_ca_certs()


@pytest.mark.parametrize(("values", "message"), [
    ({"kafka_security_protocol": "SASL_SSL"}, "needs SIA_KAFKA_SASL_USERNAME"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"},
     "needs SIA_KAFKA_SASL_USERNAME and SIA_KAFKA_SASL_PASSWORD"),
    ({"kafka_sasl_username": "u", "kafka_sasl_password": "p"}, "use SASL_SSL"),
    ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u",
      "kafka_sasl_password": "p", "kafka_ssl_cafile": "/ca.pem"}, "use SSL or SASL_SSL"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "/k.pem"},
     "SIA_KAFKA_SSL_KEYFILE needs SIA_KAFKA_SSL_CERTFILE"),
])
def test_combinations_that_cannot_work_are_refused_by_name(values: dict[str, Any],
                                                           message: str) -> None:
    with pytest.raises(SecretSettingError, match=message) as caught:
        settings(**values)
    assert "p" not in str(caught.value).split()  # the message never holds the password


def test_the_cli_says_what_is_wrong_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SIA_KAFKA_SASL_USERNAME", "sia")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["topics"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "error: SIA_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs SIA_KAFKA_SASL_USERNAME and "
        "SIA_KAFKA_SASL_PASSWORD"]


def test_a_wrong_protocol_name_is_refused_without_a_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIA_KAFKA_SECURITY_PROTOCOL", "SASL-SSL")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["produce", "nothing.jsonl"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "SIA_KAFKA_SECURITY_PROTOCOL" in result.output and "SASL-SSL" not in result.output


def test_every_kafka_client_sia_makes_is_given_the_options(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The producer of `sia produce`, the admin client of `sia topics`, the reference
    consumer of the workers and the front door's producer all pass the options on."""
    import asyncio

    import aiokafka
    import aiokafka.admin

    from sia.events.reader import RejectSink
    from sia.transports.kafka.producer import produce
    from sia.transports.kafka.receiver import KafkaPublisher
    from sia.transports.kafka.reference import read_reference
    from sia.transports.kafka.topics import Topics, create_topics

    seen: list[tuple[str, dict[str, Any]]] = []

    class Stop(Exception):
        pass

    def recorder(name: str) -> Any:
        def make(*_args: Any, **kwargs: Any) -> Any:
            seen.append((name, kwargs))
            raise Stop

        return make

    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", recorder("producer"))
    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", recorder("consumer"))
    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", recorder("admin"))
    monkeypatch.setenv("SIA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SIA_KAFKA_SASL_USERNAME", "sia")
    monkeypatch.setenv("SIA_KAFKA_SASL_PASSWORD", "pw")
    get_settings.cache_clear()
    topics = Topics("sia", 1, 1)
    try:
        for call in (lambda: create_topics("b:9092", topics),
                     lambda: produce([], bootstrap="b:9092", topics=topics,
                                     sink=RejectSink(Path("/nonexistent/r.jsonl"))),
                     lambda: read_reference("b:9092", topics, customers_partition=None)):
            with pytest.raises(Stop):
                asyncio.run(call())
        publisher = object.__new__(KafkaPublisher)
        publisher.bootstrap, publisher.topics = "b:9092", topics
        monkeypatch.setattr("sia.transports.kafka.receiver.create_topics",
                            lambda *_a, **_k: asyncio.sleep(0))
        with pytest.raises(Stop):
            asyncio.run(publisher._start())
    finally:
        get_settings.cache_clear()
    assert [name for name, _ in seen] == ["admin", "producer", "consumer", "producer"]
    for _, kwargs in seen:
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert kwargs["sasl_plain_username"] == "sia" and kwargs["sasl_plain_password"] == "pw"
        assert isinstance(kwargs["ssl_context"], ssl.SSLContext)


def test_the_worker_app_gets_the_credentials_and_the_replication_factor() -> None:
    from sia.alerts.store import AlertStore
    from sia.policy import PolicyConfig
    from sia.transports.kafka.app import SiaApp

    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                 kafka_sasl_username="sia", kafka_sasl_password="pw",
                 kafka_replication_factor=3)
    sia = SiaApp(s, list, PolicyConfig(), store=AlertStore("sqlite://"), redis=None)
    credentials = sia.app.conf.broker_credentials
    assert credentials.username == "sia" and credentials.password == "pw"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_SSL"
    assert sia.app.conf.topic_replication_factor == 3
