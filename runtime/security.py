"""Kafka's own security (SASL and TLS), configured once for every client the project creates.

The project talks to Kafka through three client libraries: FastStream's `KafkaBroker` (the
agents and the projector), plain aiokafka, and kafka-python (topic admin, catch-up, replay).
Each takes its security settings under different names and in different shapes, and each
defaults to PLAINTEXT. Configured separately, one of them is eventually left out and
silently connects in plaintext (or fails only in production, where the listener requires
authentication). So the settings are read once, from `SLEEPWAKE_KAFKA_*` variables, into one
`KafkaSecurity`, and every client's keyword arguments are derived from it:
`faststream_kwargs`, `aiokafka_kwargs`, `kafka_python_kwargs`. A setting that one protocol
would ignore (a SASL mechanism with PLAINTEXT, a CA file with SASL_PLAINTEXT) is an error,
not a silent downgrade.

Production recipe (docs/security.md): SASL_SSL with SCRAM-SHA-512, one principal per agent
(`sleepwake-<agent>`, shared by its instances), and ACLs derived from the topology by
`acl_plan`: an agent may WRITE only its own topic `sw.<agent>.v1` and the dead-letter topics
of the topics it reads (where it dead-letters undecodable input), READ the topics it
consumes, and use the consumer groups `sw-<agent>*`. The projector READs every topic.
Topics are created by a separate admin principal; every other principal only DESCRIBEs
them, which is what the start-up `ensure_topics` check needs to see that they exist.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any, Literal, cast, get_args

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from events.topology import SYSTEM, TOPIC_PREFIX, all_topics, dead_letter_of, event_topics

log = logging.getLogger("sleepwake.security")

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PROTOCOLS: tuple[str, ...] = get_args(SecurityProtocol)
MECHANISMS: tuple[str, ...] = get_args(Mechanism)

ENV_PROTOCOL = "SLEEPWAKE_KAFKA_SECURITY_PROTOCOL"
ENV_MECHANISM = "SLEEPWAKE_KAFKA_SASL_MECHANISM"
ENV_USERNAME = "SLEEPWAKE_KAFKA_USERNAME"
ENV_PASSWORD = "SLEEPWAKE_KAFKA_PASSWORD"
ENV_CAFILE = "SLEEPWAKE_KAFKA_SSL_CAFILE"
ENV_CERTFILE = "SLEEPWAKE_KAFKA_SSL_CERTFILE"
ENV_KEYFILE = "SLEEPWAKE_KAFKA_SSL_KEYFILE"
ENV_CHECK_HOSTNAME = "SLEEPWAKE_KAFKA_SSL_CHECK_HOSTNAME"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class KafkaSecurityError(ValueError):
    """A security setting that is invalid or that the chosen protocol would silently ignore."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How every client authenticates and encrypts; the default is PLAINTEXT (local broker).

    Validated on construction, so a bad combination fails where it is made, with the
    variable to fix named, rather than as a connection error (or a plaintext connection).
    """

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: Mechanism | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise KafkaSecurityError(
                f"{ENV_PROTOCOL}={self.protocol!r} is not a Kafka security protocol: "
                f"set it to one of {', '.join(PROTOCOLS)}"
            )
        if self.sasl_mechanism is not None and self.sasl_mechanism not in MECHANISMS:
            raise KafkaSecurityError(
                f"{ENV_MECHANISM}={self.sasl_mechanism!r} is not supported: "
                f"set it to one of {', '.join(MECHANISMS)}"
            )
        if self.sasl:
            self._check_sasl_complete()
        else:
            self._check_unused(
                {ENV_MECHANISM: self.sasl_mechanism, ENV_USERNAME: self.username,
                 ENV_PASSWORD: self.password},
                "authenticates nobody", "SASL_SSL (or SASL_PLAINTEXT)",
            )
        if self.tls:
            self._check_files()
        else:
            self._check_unused(
                {ENV_CAFILE: self.ssl_cafile, ENV_CERTFILE: self.ssl_certfile,
                 ENV_KEYFILE: self.ssl_keyfile,
                 ENV_CHECK_HOSTNAME: None if self.ssl_check_hostname else "false"},
                "does not use TLS", "SASL_SSL (or SSL)",
            )

    def _check_sasl_complete(self) -> None:
        if self.sasl_mechanism is None:
            raise KafkaSecurityError(
                f"{ENV_PROTOCOL}={self.protocol} needs {ENV_MECHANISM}: "
                f"set it to one of {', '.join(MECHANISMS)} (as the broker's listener expects)"
            )
        for name, value in ((ENV_USERNAME, self.username), (ENV_PASSWORD, self.password)):
            if not value:
                raise KafkaSecurityError(
                    f"{ENV_PROTOCOL}={self.protocol} with {self.sasl_mechanism} needs "
                    f"{name}: set it to this agent's principal credentials"
                )

    def _check_unused(self, settings: dict[str, str | None], why: str, fix: str) -> None:
        for name, value in settings.items():
            if value is not None:
                raise KafkaSecurityError(
                    f"{name} is set but {ENV_PROTOCOL}={self.protocol} {why}, so it would be "
                    f"ignored: set {ENV_PROTOCOL} to {fix}, or unset {name}"
                )

    def _check_files(self) -> None:
        if self.ssl_keyfile and not self.ssl_certfile:
            raise KafkaSecurityError(
                f"{ENV_KEYFILE} is set without {ENV_CERTFILE}: a client key needs its "
                f"certificate; set {ENV_CERTFILE}, or unset {ENV_KEYFILE}"
            )
        for name, path in ((ENV_CAFILE, self.ssl_cafile), (ENV_CERTFILE, self.ssl_certfile),
                           (ENV_KEYFILE, self.ssl_keyfile)):
            if path is not None and not Path(path).is_file():
                raise KafkaSecurityError(
                    f"{name}={path!r} does not exist: point it at a readable PEM file"
                    + (" (or unset it to trust the system's CAs)" if name == ENV_CAFILE else "")
                )


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None  # an empty variable (VAR= in compose files) means unset


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _optional(env, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise KafkaSecurityError(f"{name}={raw!r} is not a boolean: set it to true or false")


def security_from_env(env: Mapping[str, str] = os.environ) -> KafkaSecurity:
    """The one security configuration, from `SLEEPWAKE_KAFKA_*`; unset means PLAINTEXT.

    TLS files are loaded once here so that an unreadable certificate fails at start-up.
    """
    protocol = (_optional(env, ENV_PROTOCOL) or "PLAINTEXT").upper()
    mechanism = _optional(env, ENV_MECHANISM)
    sec = KafkaSecurity(
        protocol=cast(SecurityProtocol, protocol),
        sasl_mechanism=cast(Mechanism, mechanism.upper()) if mechanism else None,
        username=_optional(env, ENV_USERNAME),
        password=_optional(env, ENV_PASSWORD),
        ssl_cafile=_optional(env, ENV_CAFILE),
        ssl_certfile=_optional(env, ENV_CERTFILE),
        ssl_keyfile=_optional(env, ENV_KEYFILE),
        ssl_check_hostname=_flag(env, ENV_CHECK_HOSTNAME, True),
    )
    ssl_context(sec)
    if sec.protocol == "SASL_PLAINTEXT":
        log.warning("%s=SASL_PLAINTEXT: credentials and events cross the network unencrypted",
                    ENV_PROTOCOL)
    return sec


def ssl_context(sec: KafkaSecurity) -> ssl.SSLContext | None:
    """The TLS context for aiokafka and FastStream (None without TLS).

    Built like kafka-python builds its own from the same files (TLS 1.2 at least, the given
    CA or else the system's), so that all clients trust the same brokers.
    """
    if not sec.tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=sec.ssl_cafile)
    except (OSError, ssl.SSLError) as err:
        raise KafkaSecurityError(
            f"{ENV_CAFILE}={sec.ssl_cafile!r} is not a PEM CA certificate ({err}): point it at "
            "the CA that signed the brokers' certificates"
        ) from err
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = sec.ssl_check_hostname
    if sec.ssl_certfile:
        try:
            ctx.load_cert_chain(sec.ssl_certfile, sec.ssl_keyfile)
        except (OSError, ssl.SSLError) as err:
            raise KafkaSecurityError(
                f"{ENV_CERTFILE}={sec.ssl_certfile!r} / {ENV_KEYFILE}={sec.ssl_keyfile!r} is "
                f"not a PEM certificate and matching key ({err}): fix the files, or put the "
                f"key in the certificate file and unset {ENV_KEYFILE}"
            ) from err
    return ctx


def faststream_kwargs(sec: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for `faststream.kafka.KafkaBroker(...)`: `{"security": ...}` or {}.

    FastStream's `SASLPlaintext` is the PLAIN *mechanism*; with an SSL context it is SASL_SSL.
    """
    ctx = ssl_context(sec)
    if sec.protocol == "PLAINTEXT":
        return {}
    if sec.protocol == "SSL":
        return {"security": BaseSecurity(ssl_context=ctx)}
    classes: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
        "PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512,
    }
    assert sec.sasl_mechanism and sec.username and sec.password  # checked on construction
    security = classes[sec.sasl_mechanism](
        username=sec.username, password=sec.password, ssl_context=ctx, use_ssl=sec.tls,
    )
    return {"security": security}


def aiokafka_kwargs(sec: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
    if sec.protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.tls:
        kwargs["ssl_context"] = ssl_context(sec)
    if sec.sasl:
        kwargs |= {"sasl_mechanism": sec.sasl_mechanism, "sasl_plain_username": sec.username,
                   "sasl_plain_password": sec.password}
    return kwargs


def kafka_python_kwargs(sec: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaConsumer / KafkaProducer / KafkaAdminClient."""
    if sec.protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.tls:
        kwargs["ssl_check_hostname"] = sec.ssl_check_hostname
        files = {"ssl_cafile": sec.ssl_cafile, "ssl_certfile": sec.ssl_certfile,
                 "ssl_keyfile": sec.ssl_keyfile}
        kwargs |= {key: path for key, path in files.items() if path is not None}
    if sec.sasl:
        kwargs |= {"sasl_mechanism": sec.sasl_mechanism, "sasl_plain_username": sec.username,
                   "sasl_plain_password": sec.password}
    return kwargs


# ACLs: (principal, operation, resource type, resource name); a name ending in "*" is a
# PREFIXED resource pattern (the rest of the name is the prefix), any other name is LITERAL.
Acl = tuple[str, str, str, str]

ADMIN = "admin"
PROJECTOR = "projector"


def principal_of(name: str) -> str:
    """The SASL principal an agent (or `admin`, `projector`) authenticates as."""
    return f"User:sleepwake-{name}"


def group_prefix(name: str) -> str:
    """The prefix of every consumer group the agent uses (`sw-<agent>[-<instance>]`)."""
    return f"sw-{name}"


def acl_plan() -> list[Acl]:
    """Least-privilege ACLs for every principal, derived from `events.topology.SYSTEM`.

    An agent writes its own topic and dead-letters into the `.dlq` topics of what it reads
    (runtime.deadletters), so those are its only writes. Every principal but the admin
    DESCRIBEs all `sw.` topics: the start-up `ensure_topics` lists topics and would try (and
    be refused) to create any it cannot see. The projector also dead-letters undecodable
    events, hence its writes on every `.dlq` topic.
    """
    every_topic = f"{TOPIC_PREFIX}.*"
    plan: list[Acl] = []
    for spec in SYSTEM:
        who = principal_of(spec.name)
        plan.append((who, "WRITE", "TOPIC", spec.topic))
        plan += [(who, "WRITE", "TOPIC", dead_letter_of(t)) for t in spec.input_topics]
        plan += [(who, "READ", "TOPIC", t) for t in spec.input_topics]
        plan.append((who, "READ", "GROUP", f"{group_prefix(spec.name)}*"))
        plan.append((who, "DESCRIBE", "TOPIC", every_topic))
    who = principal_of(PROJECTOR)
    plan += [(who, "READ", "TOPIC", t) for t in all_topics()]
    plan += [(who, "WRITE", "TOPIC", dead_letter_of(t)) for t in event_topics()]
    plan.append((who, "READ", "GROUP", f"{group_prefix(PROJECTOR)}-*"))
    who = principal_of(ADMIN)
    plan += [(who, "CREATE", "TOPIC", every_topic), (who, "DESCRIBE", "TOPIC", every_topic)]
    return plan


def acl_commands(bootstrap: str, command_config: str = "admin.properties") -> list[str]:
    """`acl_plan` as `kafka-acls.sh --add` commands, one per principal, operation and pattern.

    `command_config` is the properties file with a super user's SASL/TLS client settings.
    """

    def key(acl: Acl) -> tuple[str, str, str, bool]:
        principal, operation, resource, name = acl
        return principal, operation, resource, name.endswith("*")

    commands: list[str] = []
    for (principal, operation, resource, prefixed), acls in groupby(acl_plan(), key=key):
        flag = f"--{resource.lower()}"
        names = " ".join(f"{flag} {name.removesuffix('*')}" for *_, name in acls)
        pattern = " --resource-pattern-type prefixed" if prefixed else ""
        commands.append(
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {command_config} "
            f"--add --allow-principal {principal} --operation {operation.capitalize()}"
            f"{pattern} {names}"
        )
    return commands
