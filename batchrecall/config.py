"""Configuration: TOML with `env:`/`file:` secrets, loaded into frozen settings."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from batchrecall import catalog
from batchrecall.catalog import Credentials, VendorSpec
from batchrecall.errors import ConfigError
from batchrecall.models import LaneKey, Vendor

CONFIG_ENV = "BATCHRECALL_CONFIG"
DEFAULT_CONFIG = Path("batchrecall.toml")
# Agora Chat app tokens built by a lane: an hour each, built afresh at half that.
DEFAULT_TOKEN_LIFETIME_S = 3600


class Secret:
    """A credential that never shows its value in repr, str or format.

    `reference` is how the config named it (`env:NAME`, `file:PATH`), or `***` for a literal:
    what an audit record may show of it.
    """

    __slots__ = ("_value", "reference")

    def __init__(self, value: str, reference: str = "***") -> None:
        self._value = value
        self.reference = reference

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    concurrency: int = 64
    max_attempts: int = 6
    request_timeout_s: float = 15.0
    halt_failure_rate: float = 0.5
    halt_min_items: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneSettings:
    """Credentials and limits of one (vendor, app) lane."""

    lane: LaneKey
    base_url: str
    rate: float
    credentials: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Secret] = field(default_factory=dict)
    batch_recall: bool = True
    auth: str = "easemob"
    """Easemob lanes: "easemob" (the token endpoint) or "agora" (app tokens built locally)."""
    token_lifetime_s: int = DEFAULT_TOKEN_LIFETIME_S
    """Agora app tokens: the lifetime of each token built (at most 24 hours)."""
    history_rate: float | None = None
    """`collect`'s history calls a second (None: the endpoint's documented rate)."""
    export_utc_offset: str = "+08:00"
    """Easemob: the time zone of the history export's hour (`collect`)."""
    recall_window_s: float | None = None
    """The app's recall window as its console sets it (None: the vendor's default); plan and
    run count the items whose `sent_at` is past it."""
    extras: Mapping[str, bool | int | float | str] = field(default_factory=dict)
    """A plugin vendor's own settings (`catalog.Setting`), each given or its default."""

    def secret(self, name: str) -> str:
        return self.secrets[name].reveal()

    def setting(self, name: str) -> Any:
        """A lane setting by name: one of these fields, or a vendor's own (`catalog.Setting`),
        its default when the lane was made without it."""
        if name in self.extras:
            return self.extras[name]
        spec = catalog.find(self.lane.vendor)
        for own in spec.config.settings if spec is not None else ():
            if own.name == name:
                return own.default
        return getattr(self, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsSettings:
    """Where lanes keep their rate windows: in this process, or in Redis shared by processes."""

    backend: str = "memory"
    url: Secret | None = None
    unavailable_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    run: RunSettings
    lanes: Mapping[LaneKey, LaneSettings]
    source: str = ""
    limits: LimitsSettings = field(default_factory=LimitsSettings)

    def lane(self, key: LaneKey) -> LaneSettings:
        try:
            return self.lanes[key]
        except KeyError:
            raise ConfigError(
                f"[{key.vendor}.{key.app}]", "no such section: the job names this app"
            ) from None

    def with_rate(self, key: LaneKey, rate: float) -> Config:
        lanes = dict(self.lanes)
        lanes[key] = replace(self.lane(key), rate=rate)
        return replace(self, lanes=lanes)


# Agora Chat app tokens live at most 24 hours (vendors.md §1.12).
_MAX_TOKEN_LIFETIME_S = 24 * 3600
_LANE_COMMON = {"base_url", "rate", "history_rate", "recall_window_s"}
_UTC_OFFSET = re.compile(r"[+-][0-9]{2}:[0-9]{2}|Z")
_RUN_TYPES: Mapping[str, type] = {
    "concurrency": int,
    "max_attempts": int,
    "request_timeout_s": float,
    "halt_failure_rate": float,
    "halt_min_items": int,
}


def resolve_config_path(cli_path: str | None) -> Path:
    if cli_path:
        return Path(cli_path)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and check a config file; every problem is a ConfigError naming the key."""
    path = Path(path)
    environ = os.environ if env is None else env
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(str(path), "config file not found") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "is a directory, not a config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc.__class__.__name__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return parse_config(raw, environ=environ, source=str(path))


def parse_config(raw: Mapping[str, Any], *, environ: Mapping[str, str], source: str) -> Config:
    run = RunSettings()
    limits = LimitsSettings()
    lanes: dict[LaneKey, LaneSettings] = {}
    for section, body in raw.items():
        if section == "run":
            run = _parse_run(body)
            continue
        if section == "limits":
            limits = parse_limits(body, environ)
            continue
        spec = catalog.find(section)
        if spec is None:
            raise ConfigError(
                f"[{section}]", f"unknown section ({', '.join(catalog.names())}, run or limits)"
            )
        if not isinstance(body, dict):
            raise ConfigError(f"[{section}]", "must be a table of apps, e.g. [easemob.default]")
        for app, lane_body in body.items():
            key = LaneKey(vendor=Vendor(spec.name), app=app)
            lanes[key] = _parse_lane(key, spec, lane_body, environ)
    return Config(run=run, lanes=lanes, source=source, limits=limits)


def _parse_run(body: Any) -> RunSettings:
    if not isinstance(body, dict):
        raise ConfigError("[run]", "must be a table")
    values: dict[str, Any] = {}
    for key, value in body.items():
        kind = _RUN_TYPES.get(key)
        if kind is None:
            raise ConfigError(f"run.{key}", "unknown key")
        values[key] = _number(f"run.{key}", value, kind)
    settings = RunSettings(**values)
    check_run_settings(settings)
    return settings


def check_run_settings(settings: RunSettings) -> None:
    if settings.concurrency < 1:
        raise ConfigError("run.concurrency", "must be at least 1")
    if settings.max_attempts < 1:
        raise ConfigError("run.max_attempts", "must be at least 1")
    if settings.request_timeout_s <= 0:
        raise ConfigError("run.request_timeout_s", "must be positive")
    if not 0 <= settings.halt_failure_rate <= 1:
        raise ConfigError("run.halt_failure_rate", "must be between 0 and 1")
    if settings.halt_min_items < 1:
        raise ConfigError("run.halt_min_items", "must be at least 1")


_LIMITS_BACKENDS = ("memory", "redis")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def parse_limits(body: Any, environ: Mapping[str, str]) -> LimitsSettings:
    """The `[limits]` section; the Redis URL is a secret (it may hold a password)."""
    if not isinstance(body, dict):
        raise ConfigError("[limits]", "must be a table")
    for key in body:
        if key not in ("backend", "url", "unavailable_timeout_s"):
            raise ConfigError(f"limits.{key}", "unknown key")
    backend = body.get("backend", "memory")
    if backend not in _LIMITS_BACKENDS:
        raise ConfigError("limits.backend", 'must be "memory" or "redis"')
    timeout = float(
        _number("limits.unavailable_timeout_s", body.get("unavailable_timeout_s", 30.0), float)
    )
    if timeout <= 0:
        raise ConfigError("limits.unavailable_timeout_s", "must be positive")
    url: Secret | None = None
    if backend == "redis":
        if "url" not in body:
            raise ConfigError("limits.url", 'missing: backend "redis" needs the server\'s URL')
        url = _secret("limits.url", body["url"], environ)
        scheme = url.reveal().partition("://")[0].lower()
        if scheme not in _REDIS_SCHEMES:
            raise ConfigError("limits.url", "must be a redis://, rediss:// or unix:// URL")
    elif "url" in body:
        # Almost certainly a forgotten backend line: the processes would not share their limits.
        raise ConfigError("limits.url", 'is set but limits.backend is not "redis"')
    return LimitsSettings(backend=backend, url=url, unavailable_timeout_s=timeout)


def _number(key: str, value: Any, kind: type) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"must be a number, got {type(value).__name__}")
    if kind is int:
        if not isinstance(value, int):
            raise ConfigError(key, "must be a whole number")
        return value
    return float(value)


def _parse_lane(
    key: LaneKey, spec: VendorSpec, body: Any, environ: Mapping[str, str]
) -> LaneSettings:
    name = f"{key.vendor}.{key.app}"
    if not isinstance(body, dict):
        raise ConfigError(f"[{name}]", "must be a table")
    auth, keys = _auth(name, spec, body)
    plain_keys, secret_keys = keys.plain, keys.secret
    default_auth = next(iter(spec.config.auths), auth)
    builtin = set(spec.config.builtin_settings)
    if auth == default_auth:
        builtin.discard("token_lifetime_s")
    own = {setting.name for setting in spec.config.settings}
    allowed = _LANE_COMMON | set(plain_keys) | set(secret_keys) | builtin | own
    allowed |= {"auth"} if spec.config.auths else set()
    for k in body:
        if k not in allowed:
            raise ConfigError(f"{name}.{k}", _unknown_key(spec, auth, k))
    if "base_url" not in body:
        raise ConfigError(f"{name}.base_url", "missing")
    base_url = _check_base_url(f"{name}.base_url", body["base_url"])
    rate = float(_number(f"{name}.rate", body.get("rate", spec.default_rate), float))
    if rate <= 0:
        raise ConfigError(f"{name}.rate", "must be positive")
    history_rate = None
    if "history_rate" in body:
        history_rate = float(_number(f"{name}.history_rate", body["history_rate"], float))
        if history_rate <= 0:
            raise ConfigError(f"{name}.history_rate", "must be positive (calls a second)")
    recall_window_s = None
    if "recall_window_s" in body:
        recall_window_s = float(_number(f"{name}.recall_window_s", body["recall_window_s"], float))
        if recall_window_s <= 0:
            raise ConfigError(f"{name}.recall_window_s", "must be positive (seconds)")
    offset = body.get("export_utc_offset", "+08:00")
    if not isinstance(offset, str) or not _UTC_OFFSET.fullmatch(offset) or offset[1:3] > "23":
        raise ConfigError(f"{name}.export_utc_offset", "must be an offset such as +08:00 or Z")
    credentials = {
        k: (_whole_number if k in keys.numbers else _plain)(f"{name}.{k}", body.get(k))
        for k in plain_keys
    }
    secrets = {k: _secret(f"{name}.{k}", body.get(k), environ) for k in secret_keys}
    batch_recall = body.get("batch_recall", True)
    if not isinstance(batch_recall, bool):
        raise ConfigError(f"{name}.batch_recall", "must be true or false")
    lifetime = DEFAULT_TOKEN_LIFETIME_S
    extras = _extras(name, spec, body)
    # Agora Chat app tokens, built by the lane: the auth of a vendor that takes token_lifetime_s.
    if auth == "agora" and "token_lifetime_s" in spec.config.builtin_settings:
        _check_agora_keys(name, credentials, secrets)
        given = body.get("token_lifetime_s", DEFAULT_TOKEN_LIFETIME_S)
        lifetime = int(_number(f"{name}.token_lifetime_s", given, int))
        if not 60 <= lifetime <= _MAX_TOKEN_LIFETIME_S:
            raise ConfigError(
                f"{name}.token_lifetime_s",
                f"must be 60 to {_MAX_TOKEN_LIFETIME_S} seconds (Agora app tokens live 24 h)",
            )
    return LaneSettings(
        lane=key,
        base_url=base_url,
        rate=rate,
        credentials=credentials,
        secrets=secrets,
        batch_recall=batch_recall,
        auth=auth,
        token_lifetime_s=lifetime,
        history_rate=history_rate,
        export_utc_offset=offset,
        recall_window_s=recall_window_s,
        extras=extras,
    )


def _auth(name: str, spec: VendorSpec, body: dict[str, Any]) -> tuple[str, Credentials]:
    """The lane's `auth` (the first of the vendor's, if not given) and its credential keys."""
    auths = spec.config.auths
    if not auths:
        return "", spec.config.credentials
    auth = body.get("auth", next(iter(auths)))
    if not isinstance(auth, str) or auth not in auths:
        choices = " or ".join(f'"{choice}"' for choice in auths)
        raise ConfigError(f"{name}.auth", f"must be {choices}")
    return str(auth), auths[auth]


def _extras(
    name: str, spec: VendorSpec, body: dict[str, Any]
) -> dict[str, bool | int | float | str]:
    """A plugin vendor's own settings, each as given (of its kind) or its default."""
    extras: dict[str, bool | int | float | str] = {}
    for setting in spec.config.settings:
        value = body.get(setting.name, setting.default)
        key = f"{name}.{setting.name}"
        if setting.choices and value not in setting.choices:
            raise ConfigError(key, f"must be {' or '.join(_quoted(c) for c in setting.choices)}")
        if setting.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(key, "must be true or false")
        elif setting.kind is str:
            value = _plain(key, value)
        else:
            value = _number(key, value, setting.kind)
        extras[setting.name] = value
    return extras


def _quoted(value: bool | int | float | str) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower()


def _unknown_key(spec: VendorSpec, auth: str, key: str) -> str:
    """Why a key is refused: it belongs to another auth of the vendor, or to none."""
    auths = spec.config.auths
    first = next(iter(auths), "")
    for other, keys in auths.items():
        # token_lifetime_s: the lifetime of the tokens a lane builds itself (an auth but the first)
        lifetime = key == "token_lifetime_s" and other != first
        if other != auth and (key in keys.keys or lifetime):
            if auth == first:
                return f'only with auth = "{other}"'
            return f'not used with auth = "{auth}" (it takes {", ".join(auths[auth].keys)})'
    return "unknown key"


def _check_agora_keys(
    name: str, credentials: Mapping[str, str], secrets: Mapping[str, Secret]
) -> None:
    """App ID and App Certificate are 32 hex digits (Agora's token builders refuse others)."""
    if not _is_hex32(credentials["app_id"]):
        raise ConfigError(f"{name}.app_id", "must be the App ID: 32 hex digits")
    if not _is_hex32(secrets["app_certificate"].reveal()):
        raise ConfigError(f"{name}.app_certificate", "must be the App Certificate: 32 hex digits")


def _is_hex32(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdefABCDEF" for c in text)


def _plain(key: str, value: Any) -> str:
    if value is None:
        raise ConfigError(key, "missing")
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "must be a non-empty string")
    return value


def _whole_number(key: str, value: Any) -> str:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        if value is None:
            raise ConfigError(key, "missing")
        raise ConfigError(key, "must be a positive whole number")
    return str(value)


def _secret(key: str, value: Any, environ: Mapping[str, str]) -> Secret:
    text = _plain(key, value)
    if text.startswith("env:"):
        var = text[4:]
        if var not in environ or not environ[var]:
            raise ConfigError(key, f"environment variable {var} is not set")
        return Secret(environ[var], reference=text)
    if text.startswith("file:"):
        path = Path(text[5:]).expanduser()
        try:
            content = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(key, f"cannot read secret file {path}: {exc.strerror}") from None
        if not content:
            raise ConfigError(key, f"secret file {path} is empty")
        return Secret(content, reference=text)
    return Secret(text)


def _check_base_url(key: str, value: Any) -> str:
    url = _plain(key, value).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, "must be an http(s) URL with a host")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(key, "plain http:// is only allowed for loopback hosts; use https://")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
