"""Settings from environment variables, validated once at start-up so a typo fails loudly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlparse


class ConfigError(ValueError):
    """A malformed setting; the message names the variable."""


def _int(env: dict[str, str], name: str, default: int, low: int = 1, high: int = 65535) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _redis_url(env: dict[str, str]) -> str:
    url = env.get("REDIS_URL", "").strip() or "redis://127.0.0.1:6379/0"
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss", "unix") or not (parsed.hostname or parsed.path):
        raise ConfigError(f"REDIS_URL must look like redis://host:port/db, got {url!r}")
    try:
        parsed.port  # noqa: B018 - raises on a non-numeric port
    except ValueError:
        raise ConfigError(f"REDIS_URL has an invalid port: {url!r}") from None
    return url


def _otlp_endpoint(env: dict[str, str]) -> None:
    # The SDK reads these itself; we only refuse values it would silently misuse.
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"):
        url = env.get(name, "").strip()
        if not url:
            continue
        parsed = urlparse(url)
        try:
            parsed.port  # noqa: B018
        except ValueError:
            raise ConfigError(f"{name} has an invalid port: {url!r}") from None
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")


@dataclass(frozen=True)
class Settings:
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_user: str = "board"
    mysql_password: str = "board"
    mysql_database: str = "board"
    mysql_timeout_s: int = 3
    mysql_tls: bool = False
    redis_url: str = "redis://127.0.0.1:6379/0"
    # From a Secret, apart from the URL (a ConfigMap); never in a repr or a log line.
    redis_password: str = field(default="", repr=False)
    redis_timeout_s: float = 1.0
    secret_key: str = "dev-only-secret-key"
    port: int = 8000
    session_ttl_s: int = 86400
    session_cookie_secure: bool = False
    proxy_hops: int = 0
    schema_auto_create: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        _otlp_endpoint(env)
        return cls(
            mysql_host=env.get("MYSQL_HOST", "").strip() or cls.mysql_host,
            mysql_port=_int(env, "MYSQL_PORT", cls.mysql_port),
            mysql_user=env.get("MYSQL_USER", "").strip() or cls.mysql_user,
            mysql_password=env.get("MYSQL_PASSWORD", cls.mysql_password),
            mysql_database=env.get("MYSQL_DATABASE", "").strip() or cls.mysql_database,
            mysql_timeout_s=_int(env, "MYSQL_TIMEOUT_SECONDS", cls.mysql_timeout_s, 1, 60),
            mysql_tls=_bool(env, "MYSQL_TLS", cls.mysql_tls),
            redis_url=_redis_url(env),
            redis_password=env.get("REDIS_PASSWORD", ""),
            secret_key=env.get("SECRET_KEY", "") or cls.secret_key,
            port=_int(env, "PORT", cls.port),
            session_ttl_s=_int(env, "SESSION_TTL_SECONDS", cls.session_ttl_s, 60, 30 * 86400),
            session_cookie_secure=_bool(env, "SESSION_COOKIE_SECURE", cls.session_cookie_secure),
            proxy_hops=_int(env, "PROXY_HOPS", cls.proxy_hops, 0, 5),
            schema_auto_create=_bool(env, "SCHEMA_AUTO_CREATE", cls.schema_auto_create),
        )
