"""One Kafka security configuration reaches FastStream, aiokafka and kafka-python alike.

No broker is needed: each client library is asked to accept the derived keyword arguments
(constructors that do not connect, the libraries' own config tables and SASL/TLS builders).
"""

from __future__ import annotations

import inspect
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.net.sasl import get_sasl_mechanism
from kafka.net.transport import KafkaSSLTransport

from events.topology import SYSTEM, all_topics, dead_letter_of, event_topics
from runtime.security import (
    KafkaSecurity,
    KafkaSecurityError,
    acl_commands,
    acl_plan,
    aiokafka_kwargs,
    faststream_kwargs,
    kafka_python_kwargs,
    principal_of,
    security_from_env,
    ssl_context,
)

FASTSTREAM_CLASS: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512,
}
SASL_ENV = {"SLEEPWAKE_KAFKA_USERNAME": "sleepwake-worker", "SLEEPWAKE_KAFKA_PASSWORD": "s3cret"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A self-signed certificate and its key, made with the openssl command line."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("pki")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=kafka"],
        check=True, capture_output=True,
    )
    return {"cafile": str(cert), "certfile": str(cert), "keyfile": str(key)}


def tls_env(pki: dict[str, str], **extra: str) -> dict[str, str]:
    return {"SLEEPWAKE_KAFKA_SSL_CAFILE": pki["cafile"],
            "SLEEPWAKE_KAFKA_SSL_CERTFILE": pki["certfile"],
            "SLEEPWAKE_KAFKA_SSL_KEYFILE": pki["keyfile"], **extra}


def assert_clients_accept(sec: KafkaSecurity) -> None:
    """Every kwarg is a real parameter of every client, and the three derivations agree."""
    aio, kp = aiokafka_kwargs(sec), kafka_python_kwargs(sec)
    for cls in (AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient):
        assert set(aio) <= set(inspect.signature(cls.__init__).parameters), cls
    for table in (KafkaConsumer.DEFAULT_CONFIG, KafkaProducer.DEFAULT_CONFIG,
                  KafkaAdminClient.DEFAULT_CONFIG):
        assert set(kp) <= set(table)
    broker = KafkaBroker("127.0.0.1:9092", **faststream_kwargs(sec))
    conn: dict[str, Any] = broker._connection_kwargs
    assert conn.get("security_protocol", "PLAINTEXT") == sec.protocol
    assert {k: v for k, v in aio.items() if k != "ssl_context"}.items() <= conn.items()
    assert isinstance(conn.get("ssl_context"), ssl.SSLContext) == sec.tls
    for shared in ("security_protocol", "sasl_mechanism", "sasl_plain_username",
                   "sasl_plain_password"):
        assert aio.get(shared) == kp.get(shared)


def test_unset_means_plaintext_and_no_kwargs_for_any_client() -> None:
    sec = security_from_env({})
    assert sec == KafkaSecurity() and sec.protocol == "PLAINTEXT"
    assert faststream_kwargs(sec) == aiokafka_kwargs(sec) == kafka_python_kwargs(sec) == {}
    assert security_from_env({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "",
                              "SLEEPWAKE_KAFKA_SASL_MECHANISM": " "}) == sec
    assert_clients_accept(sec)


def test_the_password_stays_out_of_the_repr() -> None:
    sec = security_from_env({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                             "SLEEPWAKE_KAFKA_SASL_MECHANISM": "PLAIN", **SASL_ENV})
    assert "s3cret" not in repr(sec)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_sasl_plaintext_maps_to_each_client(mechanism: str) -> None:
    sec = security_from_env({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
                             "SLEEPWAKE_KAFKA_SASL_MECHANISM": mechanism.lower(), **SASL_ENV})
    security = faststream_kwargs(sec)["security"]
    assert type(security) is FASTSTREAM_CLASS[mechanism]
    assert (security.username, security.password, security.use_ssl) == (
        "sleepwake-worker", "s3cret", False)
    assert aiokafka_kwargs(sec) == kafka_python_kwargs(sec) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
        "sasl_plain_username": "sleepwake-worker", "sasl_plain_password": "s3cret",
    }
    assert_clients_accept(sec)
    AIOKafkaClient(bootstrap_servers="127.0.0.1:9092", **aiokafka_kwargs(sec))  # validates
    assert get_sasl_mechanism(mechanism)(**kafka_python_kwargs(sec)).username == "sleepwake-worker"


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_sasl_ssl_maps_to_each_client(mechanism: str, pki: dict[str, str]) -> None:
    sec = security_from_env(tls_env(pki, SLEEPWAKE_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
                                    SLEEPWAKE_KAFKA_SASL_MECHANISM=mechanism, **SASL_ENV))
    security = faststream_kwargs(sec)["security"]
    assert type(security) is FASTSTREAM_CLASS[mechanism]
    assert security.use_ssl and isinstance(security.ssl_context, ssl.SSLContext)
    aio = aiokafka_kwargs(sec)
    assert aio["security_protocol"] == "SASL_SSL" and aio["sasl_mechanism"] == mechanism
    assert isinstance(aio["ssl_context"], ssl.SSLContext)
    assert kafka_python_kwargs(sec) == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": mechanism,
        "sasl_plain_username": "sleepwake-worker", "sasl_plain_password": "s3cret",
        "ssl_cafile": pki["cafile"], "ssl_certfile": pki["certfile"],
        "ssl_keyfile": pki["keyfile"], "ssl_check_hostname": True,
    }
    assert_clients_accept(sec)
    AIOKafkaClient(bootstrap_servers="127.0.0.1:9092", **aio)


def test_ssl_builds_the_same_tls_for_every_client(pki: dict[str, str]) -> None:
    sec = security_from_env(tls_env(pki, SLEEPWAKE_KAFKA_SECURITY_PROTOCOL="SSL"))
    ctx = ssl_context(sec)
    assert ctx is not None and ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "kafka"),),)]
    security = faststream_kwargs(sec)["security"]
    assert type(security) is BaseSecurity and security.use_ssl
    kp = kafka_python_kwargs(sec)
    assert "sasl_mechanism" not in kp and "sasl_mechanism" not in aiokafka_kwargs(sec)
    # kafka-python builds its context from the files itself: it must load them and agree
    theirs = KafkaSSLTransport._build_ssl_context({**KafkaSSLTransport.DEFAULT_CONFIG, **kp})
    assert theirs.get_ca_certs() == ctx.get_ca_certs()
    assert (theirs.check_hostname, theirs.verify_mode) == (ctx.check_hostname, ctx.verify_mode)
    assert_clients_accept(sec)


def test_hostname_check_can_be_turned_off_for_every_client(pki: dict[str, str]) -> None:
    sec = security_from_env(tls_env(pki, SLEEPWAKE_KAFKA_SECURITY_PROTOCOL="SSL",
                                    SLEEPWAKE_KAFKA_SSL_CHECK_HOSTNAME="false"))
    ctx = ssl_context(sec)
    assert ctx is not None and not ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert kafka_python_kwargs(sec)["ssl_check_hostname"] is False


def test_ssl_without_a_cafile_trusts_the_system_cas() -> None:
    sec = security_from_env({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SSL"})
    assert isinstance(ssl_context(sec), ssl.SSLContext)
    assert kafka_python_kwargs(sec) == {"security_protocol": "SSL", "ssl_check_hostname": True}


BAD: list[tuple[dict[str, str], str]] = [
    ({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "SLEEPWAKE_KAFKA_SECURITY_PROTOCOL"),
    ({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", **SASL_ENV},
     "SLEEPWAKE_KAFKA_SASL_MECHANISM"),
    ({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
      "SLEEPWAKE_KAFKA_SASL_MECHANISM": "GSSAPI", **SASL_ENV}, "SLEEPWAKE_KAFKA_SASL_MECHANISM"),
    ({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
      "SLEEPWAKE_KAFKA_SASL_MECHANISM": "PLAIN", "SLEEPWAKE_KAFKA_PASSWORD": "x"},
     "SLEEPWAKE_KAFKA_USERNAME"),
    ({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
      "SLEEPWAKE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "SLEEPWAKE_KAFKA_USERNAME": "x"},
     "SLEEPWAKE_KAFKA_PASSWORD"),
    ({"SLEEPWAKE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", **SASL_ENV},
     "SLEEPWAKE_KAFKA_SASL_MECHANISM"),
    ({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SSL", "SLEEPWAKE_KAFKA_SASL_MECHANISM": "PLAIN"},
     "SLEEPWAKE_KAFKA_SASL_MECHANISM"),
    ({"SLEEPWAKE_KAFKA_USERNAME": "x"}, "SLEEPWAKE_KAFKA_USERNAME"),
    ({"SLEEPWAKE_KAFKA_SSL_CAFILE": "/etc/hostname"}, "SLEEPWAKE_KAFKA_SSL_CAFILE"),
    ({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
      "SLEEPWAKE_KAFKA_SASL_MECHANISM": "PLAIN", "SLEEPWAKE_KAFKA_SSL_CHECK_HOSTNAME": "false",
      **SASL_ENV}, "SLEEPWAKE_KAFKA_SSL_CHECK_HOSTNAME"),
    ({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SSL",
      "SLEEPWAKE_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "SLEEPWAKE_KAFKA_SSL_CAFILE"),
    ({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SSL",
      "SLEEPWAKE_KAFKA_SSL_CERTFILE": "/nonexistent/cert.pem"}, "SLEEPWAKE_KAFKA_SSL_CERTFILE"),
    ({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SSL", "SLEEPWAKE_KAFKA_SSL_CHECK_HOSTNAME": "maybe"},
     "SLEEPWAKE_KAFKA_SSL_CHECK_HOSTNAME"),
]


@pytest.mark.parametrize(("env", "variable"), BAD)
def test_a_bad_combination_fails_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(KafkaSecurityError, match=variable) as err:
        security_from_env(env)
    assert ": " in str(err.value)  # the reason is followed by the fix


def test_a_keyfile_needs_its_certificate(pki: dict[str, str]) -> None:
    with pytest.raises(KafkaSecurityError, match="SLEEPWAKE_KAFKA_SSL_CERTFILE"):
        security_from_env({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SSL",
                           "SLEEPWAKE_KAFKA_SSL_KEYFILE": pki["keyfile"]})


def test_a_file_that_is_not_pem_fails_at_start_up(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(KafkaSecurityError, match="SLEEPWAKE_KAFKA_SSL_CAFILE"):
        security_from_env({"SLEEPWAKE_KAFKA_SECURITY_PROTOCOL": "SSL",
                           "SLEEPWAKE_KAFKA_SSL_CAFILE": str(junk)})


def test_constructing_directly_is_validated_too() -> None:
    with pytest.raises(KafkaSecurityError, match="SLEEPWAKE_KAFKA_SASL_MECHANISM"):
        KafkaSecurity(protocol="PLAINTEXT", sasl_mechanism="PLAIN")


def test_each_agent_writes_only_its_own_topic_and_the_dead_letters_of_its_inputs() -> None:
    plan = acl_plan()
    events = set(event_topics())
    for spec in SYSTEM:
        who = principal_of(spec.name)
        writes = {name for p, op, kind, name in plan if (p, op, kind) == (who, "WRITE", "TOPIC")}
        assert writes & events == {spec.topic}
        assert writes - events == {dead_letter_of(t) for t in spec.input_topics}
        reads = {name for p, op, kind, name in plan if (p, op, kind) == (who, "READ", "TOPIC")}
        assert reads == set(spec.input_topics)
        groups = {name for p, op, kind, name in plan if (p, op, kind) == (who, "READ", "GROUP")}
        assert groups == {f"sw-{spec.name}*"}
        assert not {op for p, op, *_ in plan if p == who} - {"READ", "WRITE", "DESCRIBE"}


def test_the_projector_reads_everything_and_only_the_admin_creates() -> None:
    plan = acl_plan()
    who = principal_of("projector")
    reads = {name for p, op, kind, name in plan if (p, op, kind) == (who, "READ", "TOPIC")}
    assert reads == set(all_topics())
    assert (who, "READ", "GROUP", "sw-projector-*") in plan
    writes = {name for p, op, kind, name in plan if (p, op, kind) == (who, "WRITE", "TOPIC")}
    assert writes == {dead_letter_of(t) for t in event_topics()}
    assert {p for p, op, *_ in plan if op == "CREATE"} == {principal_of("admin")}
    assert len({principal_of(s.name) for s in SYSTEM} | {who, principal_of("admin")}) == (
        len(SYSTEM) + 2)


def test_acl_commands_cover_the_plan() -> None:
    commands = acl_commands("kafka:9092")
    assert all(c.startswith("kafka-acls.sh --bootstrap-server kafka:9092 ") for c in commands)
    assert (
        "kafka-acls.sh --bootstrap-server kafka:9092 --command-config admin.properties --add "
        "--allow-principal User:sleepwake-pinger --operation Write "
        "--topic sw.pinger.v1 --topic sw.ponger.v1.dlq"
    ) in commands
    assert any(c.endswith("--operation Read --resource-pattern-type prefixed --group "
                          "sw-projector-") for c in commands)
    assert sum(c.count(" --topic ") + c.count(" --group ") for c in commands) == len(acl_plan())


def test_the_doc_shows_the_current_acl_commands() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "security.md"
    assert "\n".join(acl_commands("kafka:9092")) in doc.read_text()
