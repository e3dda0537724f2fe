"""Configuration (SPEC §3): TOML, defaults, `env:`/`file:` secrets, checks that name the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchrecall.config import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    Config,
    RunSettings,
    Secret,
    load_config,
    resolve_config_path,
)
from batchrecall.errors import ConfigError, UsageError
from batchrecall.models import LaneKey, Vendor

EASEMOB_SECRET = "em-client-secret-7f3a9c"
GOEASY_SECRET = "BC-goeasy-appkey-51d2"
YUNXIN_SECRET = "yx-app-secret-0e8b44"
ENV = {
    "EASEMOB_CLIENT_SECRET": EASEMOB_SECRET,
    "GOEASY_APPKEY": GOEASY_SECRET,
    "YUNXIN_APP_SECRET": YUNXIN_SECRET,
}

FULL = """\
[run]
concurrency = 32
max_attempts = 4
request_timeout_s = 20
halt_failure_rate = 0.25
halt_min_items = 100

[easemob.default]
base_url = "https://a1.easemob.com"
org_name = "acme"
app_name = "chat"
client_id = "YXA6abc"
client_secret = "env:EASEMOB_CLIENT_SECRET"
rate = 40
batch_recall = false

[goeasy.default]
base_url = "https://rest-hz.goeasy.io"
appkey = "env:GOEASY_APPKEY"
rate = 8

[yunxin.default]
base_url = "https://open.yunxinapi.com"
app_key = "yx-app-key"
app_secret = "env:YUNXIN_APP_SECRET"
rate = 45.5
"""

EASEMOB_MIN = """\
[easemob.default]
base_url = "https://a1.easemob.com"
org_name = "acme"
app_name = "chat"
client_id = "YXA6abc"
client_secret = "env:EASEMOB_CLIENT_SECRET"
"""
GOEASY_MIN = """\
[goeasy.default]
base_url = "https://rest-hz.goeasy.io"
appkey = "env:GOEASY_APPKEY"
"""
YUNXIN_MIN = """\
[yunxin.default]
base_url = "https://open.yunxinapi.com"
app_key = "yx-app-key"
app_secret = "env:YUNXIN_APP_SECRET"
"""

EASEMOB = LaneKey(vendor=Vendor.EASEMOB, app="default")
GOEASY = LaneKey(vendor=Vendor.GOEASY, app="default")
YUNXIN = LaneKey(vendor=Vendor.YUNXIN, app="default")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "batchrecall.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), env=ENV if env is None else env)


def config_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    return info.value


# A full, valid config


def test_full_config(tmp_path: Path) -> None:
    config = load(tmp_path, FULL)
    assert config.run == RunSettings(
        concurrency=32,
        max_attempts=4,
        request_timeout_s=20.0,
        halt_failure_rate=0.25,
        halt_min_items=100,
    )
    assert set(config.lanes) == {EASEMOB, GOEASY, YUNXIN}

    easemob = config.lane(EASEMOB)
    assert easemob.base_url == "https://a1.easemob.com"
    assert easemob.rate == 40
    assert easemob.batch_recall is False
    assert dict(easemob.credentials) == {
        "org_name": "acme",
        "app_name": "chat",
        "client_id": "YXA6abc",
    }
    assert easemob.secret("client_secret") == EASEMOB_SECRET

    goeasy = config.lane(GOEASY)
    assert goeasy.rate == 8
    assert goeasy.secret("appkey") == GOEASY_SECRET

    yunxin = config.lane(YUNXIN)
    assert yunxin.rate == 45.5
    assert yunxin.credentials["app_key"] == "yx-app-key"
    assert yunxin.secret("app_secret") == YUNXIN_SECRET

    assert config.source == str(tmp_path / "batchrecall.toml")


def test_several_apps_of_one_vendor(tmp_path: Path) -> None:
    text = EASEMOB_MIN + EASEMOB_MIN.replace("[easemob.default]", "[easemob.eu]").replace(
        "a1.easemob.com", "a61.easemob.com"
    )
    config = load(tmp_path, text)
    eu = config.lane(LaneKey(vendor=Vendor.EASEMOB, app="eu"))
    assert eu.base_url == "https://a61.easemob.com"
    assert config.lane(EASEMOB).base_url == "https://a1.easemob.com"


def test_unknown_app_names_its_section(tmp_path: Path) -> None:
    config = load(tmp_path, GOEASY_MIN)
    with pytest.raises(ConfigError, match=r"\[goeasy\.other\]"):
        config.lane(LaneKey(vendor=Vendor.GOEASY, app="other"))


def test_base_url_keeps_its_path_without_trailing_slash(tmp_path: Path) -> None:
    text = YUNXIN_MIN.replace(
        "https://open.yunxinapi.com", "https://api-cn.yunxinapi.com/nimserver/"
    )
    assert load(tmp_path, text).lane(YUNXIN).base_url == "https://api-cn.yunxinapi.com/nimserver"


def test_with_rate_replaces_one_lane_only(tmp_path: Path) -> None:
    config = load(tmp_path, FULL)
    changed = config.with_rate(GOEASY, 3)
    assert changed.lane(GOEASY).rate == 3
    assert changed.lane(YUNXIN).rate == 45.5
    assert config.lane(GOEASY).rate == 8


# Defaults


def test_default_rates(tmp_path: Path) -> None:
    config = load(tmp_path, EASEMOB_MIN + GOEASY_MIN + YUNXIN_MIN)
    assert config.lane(EASEMOB).rate == 50
    assert config.lane(YUNXIN).rate == 50
    assert config.lane(GOEASY).rate == 10
    assert config.lane(EASEMOB).batch_recall is True


def test_default_run_settings(tmp_path: Path) -> None:
    config = load(tmp_path, GOEASY_MIN)
    assert config.run == RunSettings()
    assert config.run.concurrency == 64
    assert config.run.max_attempts == 6
    assert config.run.request_timeout_s == 15
    assert config.run.halt_failure_rate == 0.5
    assert config.run.halt_min_items == 200


def test_partial_run_section_keeps_other_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "[run]\nconcurrency = 8\n")
    assert config.run == RunSettings(concurrency=8)
    assert config.lanes == {}


def test_empty_config_is_valid(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.run == RunSettings()
    assert config.lanes == {}


# Config path


def test_config_path_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, "/etc/from-env.toml")
    assert resolve_config_path("cli.toml") == Path("cli.toml")
    assert resolve_config_path(None) == Path("/etc/from-env.toml")
    monkeypatch.delenv(CONFIG_ENV)
    assert resolve_config_path(None) == DEFAULT_CONFIG == Path("batchrecall.toml")


# Secrets


def test_literal_secret(tmp_path: Path) -> None:
    text = GOEASY_MIN.replace('"env:GOEASY_APPKEY"', '"BC-literal-key"')
    assert load(tmp_path, text, env={}).lane(GOEASY).secret("appkey") == "BC-literal-key"


def test_env_secret_read_from_the_given_environment(tmp_path: Path) -> None:
    config = load(tmp_path, GOEASY_MIN, env={"GOEASY_APPKEY": "from-env-123"})
    assert config.lane(GOEASY).secret("appkey") == "from-env-123"


def test_env_secret_defaults_to_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOEASY_APPKEY", "process-env-456")
    config = load_config(write(tmp_path, GOEASY_MIN))
    assert config.lane(GOEASY).secret("appkey") == "process-env-456"


@pytest.mark.parametrize("env", [{}, {"GOEASY_APPKEY": ""}], ids=["unset", "empty"])
def test_unset_env_secret_names_key_and_variable(tmp_path: Path, env: dict[str, str]) -> None:
    error = config_error(tmp_path, GOEASY_MIN, env)
    assert error.key == "goeasy.default.appkey"
    assert "goeasy.default.appkey" in str(error)
    assert "GOEASY_APPKEY" in str(error)
    assert isinstance(error, UsageError)


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\n\n", ""])
def test_file_secret_strips_trailing_newline(tmp_path: Path, ending: str) -> None:
    secret_file = tmp_path / "appkey.txt"
    secret_file.write_bytes(f"BC-file-secret{ending}".encode())
    text = GOEASY_MIN.replace('"env:GOEASY_APPKEY"', f'"file:{secret_file.as_posix()}"')
    assert load(tmp_path, text).lane(GOEASY).secret("appkey") == "BC-file-secret"


def test_file_secret_keeps_inner_and_leading_text(tmp_path: Path) -> None:
    secret_file = tmp_path / "appkey.txt"
    secret_file.write_text(" a b\tc\n", encoding="utf-8")
    text = GOEASY_MIN.replace('"env:GOEASY_APPKEY"', f'"file:{secret_file.as_posix()}"')
    assert load(tmp_path, text).lane(GOEASY).secret("appkey") == " a b\tc"


def test_missing_secret_file_names_the_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    text = GOEASY_MIN.replace('"env:GOEASY_APPKEY"', f'"file:{missing.as_posix()}"')
    error = config_error(tmp_path, text)
    assert error.key == "goeasy.default.appkey"
    assert "nope.txt" in str(error)


def test_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    secret_file = tmp_path / "empty.txt"
    secret_file.write_text("\n", encoding="utf-8")
    text = GOEASY_MIN.replace('"env:GOEASY_APPKEY"', f'"file:{secret_file.as_posix()}"')
    assert config_error(tmp_path, text).key == "goeasy.default.appkey"


# Keys and sections


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[slack.default]\nbase_url = 'https://x'\n", "[slack]"),
        ("[run]\nparallelism = 3\n", "run.parallelism"),
        (GOEASY_MIN + "region = 'hz'\n", "goeasy.default.region"),
        (YUNXIN_MIN + "batch_recall = true\n", "yunxin.default.batch_recall"),
        (EASEMOB_MIN + "client_sercet = 'typo'\n", "easemob.default.client_sercet"),
    ],
)
def test_unknown_key_or_section_is_named(tmp_path: Path, text: str, key: str) -> None:
    error = config_error(tmp_path, text)
    assert error.key == key
    assert key in str(error)
    assert "unknown" in error.problem


@pytest.mark.parametrize(
    ("section", "drop", "key"),
    [
        (EASEMOB_MIN, "client_id", "easemob.default.client_id"),
        (EASEMOB_MIN, "client_secret", "easemob.default.client_secret"),
        (EASEMOB_MIN, "org_name", "easemob.default.org_name"),
        (EASEMOB_MIN, "app_name", "easemob.default.app_name"),
        (EASEMOB_MIN, "base_url", "easemob.default.base_url"),
        (GOEASY_MIN, "appkey", "goeasy.default.appkey"),
        (YUNXIN_MIN, "app_key", "yunxin.default.app_key"),
        (YUNXIN_MIN, "app_secret", "yunxin.default.app_secret"),
    ],
)
def test_missing_credential_is_named(tmp_path: Path, section: str, drop: str, key: str) -> None:
    text = "\n".join(line for line in section.splitlines() if not line.startswith(drop + " "))
    assert text != section
    error = config_error(tmp_path, text)
    assert error.key == key
    assert "missing" in error.problem


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[run]\nconcurrency = 0\n", "run.concurrency"),
        ("[run]\nconcurrency = 2.5\n", "run.concurrency"),
        ("[run]\nmax_attempts = '3'\n", "run.max_attempts"),
        ("[run]\nrequest_timeout_s = true\n", "run.request_timeout_s"),
        ("[run]\nhalt_failure_rate = 1.5\n", "run.halt_failure_rate"),
        ("[run]\nhalt_min_items = 0\n", "run.halt_min_items"),
        ("run = 3\n", "[run]"),
        ("goeasy = 3\n", "[goeasy]"),
        ("[goeasy]\ndefault = 3\n", "[goeasy.default]"),
        (GOEASY_MIN + "rate = 0\n", "goeasy.default.rate"),
        (GOEASY_MIN + "rate = 'fast'\n", "goeasy.default.rate"),
        (EASEMOB_MIN + "batch_recall = 'yes'\n", "easemob.default.batch_recall"),
        (GOEASY_MIN.replace('"env:GOEASY_APPKEY"', '""'), "goeasy.default.appkey"),
        (GOEASY_MIN.replace('"env:GOEASY_APPKEY"', "42"), "goeasy.default.appkey"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, text: str, key: str) -> None:
    assert config_error(tmp_path, text).key == key


# base_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8750/yunxin",
        "http://localhost:8750/yunxin",
        "http://[::1]:8750/yunxin",
        "http://127.1.2.3/yunxin",
        "https://open.yunxinapi.com",
    ],
)
def test_http_allowed_only_for_loopback(tmp_path: Path, url: str) -> None:
    text = YUNXIN_MIN.replace("https://open.yunxinapi.com", url)
    assert load(tmp_path, text).lane(YUNXIN).base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://open.yunxinapi.com",
        "http://10.0.0.5:8750",
        "http://127.0.0.1.example.com",
        "http://localhost.example.com",
        "ftp://open.yunxinapi.com",
        "open.yunxinapi.com",
        "https://",
    ],
)
def test_bad_base_url_is_refused(tmp_path: Path, url: str) -> None:
    text = YUNXIN_MIN.replace("https://open.yunxinapi.com", url)
    error = config_error(tmp_path, text)
    assert error.key == "yunxin.default.base_url"


# The file itself


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=r"absent\.toml") as info:
        load_config(path, env=ENV)
    assert "not found" in info.value.problem


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        load_config(tmp_path, env=ENV)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[goeasy.default\nbase_url = "x"\n')
    assert error.key.endswith("batchrecall.toml")
    assert "TOML" in error.problem


def test_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "batchrecall.toml"
    path.write_bytes(b"[run]\nconcurrency = 3 # \xff\xfe\n")
    with pytest.raises(ConfigError):
        load_config(path, env=ENV)


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "batchrecall.toml"
    path.write_bytes(b"\xef\xbb\xbf[run]\nconcurrency = 3\n")
    assert load_config(path, env=ENV).run.concurrency == 3


# Secrets never show


def test_secret_never_shows_its_value() -> None:
    secret = Secret("s3cr3t-value-xyz")
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", format(secret)):
        assert "s3cr3t-value-xyz" not in shown
        assert "***" in shown
    assert secret.reveal() == "s3cr3t-value-xyz"
    assert secret == Secret("s3cr3t-value-xyz")
    assert secret != Secret("other")
    assert secret != "s3cr3t-value-xyz"


def test_config_repr_never_shows_secrets(tmp_path: Path) -> None:
    config = load(tmp_path, FULL)
    shown = repr(config) + str(config) + repr(config.lane(EASEMOB)) + repr(config.lanes)
    for value in ENV.values():
        assert value not in shown


@pytest.mark.parametrize(
    "mutation",
    [
        lambda text: text.replace("rate = 8", "rate = 0"),
        lambda text: text.replace("rate = 8", "rate = 8\nextra = 'x'"),
        lambda text: text.replace('"https://rest-hz.goeasy.io"', '"http://rest-hz.goeasy.io"'),
        lambda text: text.replace('app_key = "yx-app-key"\n', ""),
        lambda text: text.replace("rate = 45.5", "rate = 'yx-app-secret-0e8b44'"),
        lambda text: text.replace("[run]", "[run]\nbogus = 'em-client-secret-7f3a9c'"),
    ],
)
def test_config_error_never_contains_a_secret(
    tmp_path: Path, mutation: Callable[[str], str]
) -> None:
    text = mutation(FULL)
    assert text != FULL
    error = config_error(tmp_path, text)
    shown = str(error) + repr(error) + error.key + error.problem
    for value in ENV.values():
        assert value not in shown


def test_config_error_for_a_literal_secret_does_not_echo_it(tmp_path: Path) -> None:
    text = GOEASY_MIN.replace('"env:GOEASY_APPKEY"', '"BC-literal-secret-99"') + "rate = -1\n"
    error = config_error(tmp_path, text)
    assert "BC-literal-secret-99" not in str(error)


def test_bad_toml_error_does_not_echo_the_line(tmp_path: Path) -> None:
    text = GOEASY_MIN.replace('"env:GOEASY_APPKEY"', '"BC-literal-secret-99" trailing')
    error = config_error(tmp_path, text)
    assert "BC-literal-secret-99" not in str(error)


# Agora Chat lanes: `auth = "agora"`, an app token built from the App ID and App Certificate

AGORA_CERTIFICATE = "5CFd2fd1755d40ecb72977518be15d3b"
AGORA = """\
[easemob.agora]
base_url = "https://a41.chat.agora.io"
org_name = "411000000"
app_name = "1100000"
auth = "agora"
app_id = "970CA35de60c44645bbae8a215061b33"
app_certificate = "env:AGORA_APP_CERTIFICATE"
"""
AGORA_ENV = {"AGORA_APP_CERTIFICATE": AGORA_CERTIFICATE}
AGORA_LANE = LaneKey(vendor=Vendor.EASEMOB, app="agora")


def test_agora_lane(tmp_path: Path) -> None:
    lane = load(tmp_path, AGORA + "token_lifetime_s = 7200\n", AGORA_ENV).lane(AGORA_LANE)
    assert lane.auth == "agora"
    assert dict(lane.credentials) == {
        "org_name": "411000000",
        "app_name": "1100000",
        "app_id": "970CA35de60c44645bbae8a215061b33",
    }
    assert lane.secret("app_certificate") == AGORA_CERTIFICATE
    assert AGORA_CERTIFICATE not in repr(lane)
    assert lane.token_lifetime_s == 7200


def test_easemob_lanes_default_to_the_token_endpoint(tmp_path: Path) -> None:
    lane = load(tmp_path, EASEMOB_MIN).lane(EASEMOB)
    assert lane.auth == "easemob"
    assert load(tmp_path, AGORA, AGORA_ENV).lane(AGORA_LANE).token_lifetime_s == 3600


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (AGORA.replace('"agora"', '"oauth"'), "easemob.agora.auth", '"easemob" or "agora"'),
        (AGORA + "client_id = 'YXA6abc'\n", "easemob.agora.client_id", "not used with auth"),
        (EASEMOB_MIN + "app_id = 'x'\n", "easemob.default.app_id", 'only with auth = "agora"'),
        (EASEMOB_MIN + "token_lifetime_s = 60\n", "easemob.default.token_lifetime_s", "only"),
        (AGORA.replace("970CA35de60c44645bbae8a215061b33", "abc"), "easemob.agora.app_id", "32"),
        (AGORA + "token_lifetime_s = 86401\n", "easemob.agora.token_lifetime_s", "24 h"),
        (AGORA + "token_lifetime_s = 59\n", "easemob.agora.token_lifetime_s", "60 to"),
        (AGORA + "token_lifetime_s = 'long'\n", "easemob.agora.token_lifetime_s", "number"),
        ("\n".join(AGORA.splitlines()[:-1]), "easemob.agora.app_certificate", "missing"),
    ],
)
def test_agora_lane_problems_are_named(tmp_path: Path, text: str, key: str, words: str) -> None:
    error = config_error(tmp_path, text, AGORA_ENV)
    assert error.key == key
    assert words in error.problem


def test_a_malformed_certificate_is_refused_without_showing_it(tmp_path: Path) -> None:
    error = config_error(tmp_path, AGORA, {"AGORA_APP_CERTIFICATE": "not-a-certificate-value"})
    assert error.key == "easemob.agora.app_certificate"
    assert "not-a-certificate-value" not in str(error)
