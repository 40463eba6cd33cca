"""TLS and SASL for every Kafka client SIA makes, from the SIA_KAFKA_* settings.

One mapping, two shapes: `faust_credentials` for the workers' Faust app
(`broker_credentials`), `client_options` for the aiokafka producers, consumers and admin
clients of `sia produce`, `sia topics` and the front door of `sia serve --kafka`. Both
come from the same SSL context, and `client_options` gives what Faust hands aiokafka
for the same credentials (tests/transports/test_kafka_security.py checks the two agree).
Which combinations make sense is checked when the settings are read
(`Settings._kafka_security_that_can_work`). See docs/kafka-security.md.
"""

from __future__ import annotations

import ssl
from typing import Any

from sia.settings import Settings, get_settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (None for the plaintext protocols): the
    system's trusted CAs or SIA_KAFKA_SSL_CAFILE, and a client certificate when
    SIA_KAFKA_SSL_CERTFILE is set. Host names are verified."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=settings.kafka_ssl_cafile or None)
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(settings.kafka_ssl_certfile,
                                settings.kafka_ssl_keyfile or None)
    return context


def client_options(settings: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient
    ({} for PLAINTEXT, aiokafka's default)."""
    settings = settings or get_settings()
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol,
                               "ssl_context": ssl_context(settings)}
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=password.get_secret_value() if password else None)
    return options


def faust_credentials(settings: Settings) -> Any:
    """`broker_credentials` for faust.App (None for PLAINTEXT)."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(username=settings.kafka_sasl_username,
                                 password=password.get_secret_value() if password else None,
                                 ssl_context=context, mechanism=settings.kafka_sasl_mechanism)


def describe(settings: Settings) -> str:
    """The security in use, in words, never the password: 'SASL_SSL, SCRAM-SHA-512 as
    sia-prod'."""
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL_"):
        return f"{protocol}, {settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username}"
    return protocol
