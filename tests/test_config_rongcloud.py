"""Configuration of RongCloud lanes (SPEC §3): `[rongcloud.APP]`, its default rate, the secret,
and the signature's Timestamp unit."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchrecall.config import Config, load_config
from batchrecall.errors import ConfigError
from batchrecall.models import LaneKey, Vendor

SECRET = "rc-app-secret-5be81d"
SECTION = """\
[rongcloud.default]
base_url = "https://api.rong-api.com"
app_key = "rc-app-key"
app_secret = "env:RONGCLOUD_APP_SECRET"
"""
KEY = LaneKey(vendor=Vendor.RONGCLOUD, app="default")


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "batchrecall.toml"
    path.write_text(text)
    return load_config(path, env={"RONGCLOUD_APP_SECRET": SECRET})


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    return caught.value


def test_a_rongcloud_lane(tmp_path: Path) -> None:
    lane = _load(tmp_path, SECTION).lane(KEY)
    assert lane.base_url == "https://api.rong-api.com"
    assert lane.credentials == {"app_key": "rc-app-key"}
    assert lane.secret("app_secret") == SECRET
    assert lane.secrets["app_secret"].reference == "env:RONGCLOUD_APP_SECRET"
    assert lane.rate == 50.0  # half of the documented 100/s
    assert lane.extras == {"timestamp_unit": "s"}  # what the official SDKs send


def test_rate_and_the_timestamp_unit_are_kept(tmp_path: Path) -> None:
    lane = _load(tmp_path, SECTION + 'rate = 20\ntimestamp_unit = "ms"\n').lane(KEY)
    assert (lane.rate, lane.setting("timestamp_unit")) == (20.0, "ms")


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (SECTION + 'timestamp_unit = "us"\n', "rongcloud.default.timestamp_unit", '"s" or "ms"'),
        (SECTION + "timestamp_unit = 1000\n", "rongcloud.default.timestamp_unit", '"s" or "ms"'),
        (SECTION.replace('app_key = "rc-app-key"\n', ""), "rongcloud.default.app_key", "missing"),
        (SECTION.replace("app_secret", "#"), "rongcloud.default.app_secret", "missing"),
        (SECTION + "org_name = 'x'\n", "rongcloud.default.org_name", "unknown key"),
        (
            '[yunxin.default]\nbase_url = "https://open.yunxinapi.com"\napp_key = "k"\n'
            'app_secret = "s"\ntimestamp_unit = "ms"\n',
            "yunxin.default.timestamp_unit",
            "unknown key",
        ),
    ],
)
def test_problems_are_named(tmp_path: Path, text: str, key: str, words: str) -> None:
    error = _error(tmp_path, text)
    assert error.key == key
    assert words in error.problem


def test_an_unknown_section_lists_every_vendor(tmp_path: Path) -> None:
    error = _error(tmp_path, "[rongyun.default]\nbase_url = 'https://x'\n")
    assert error.key == "[rongyun]"
    assert "rongcloud" in error.problem
    assert "yunxin" in error.problem


def test_the_secret_never_shows(tmp_path: Path) -> None:
    config = _load(tmp_path, SECTION)
    assert SECRET not in repr(config)
    assert SECRET not in str(config.lane(KEY))


def test_lanes_of_one_app_key_share_their_limit_apart_from_yunxins(tmp_path: Path) -> None:
    from batchrecall.run.limits import lane_identity

    text = SECTION + SECTION.replace("rongcloud.default", "rongcloud.other")
    text += '[yunxin.default]\nbase_url = "https://open.yunxinapi.com"\napp_key = "rc-app-key"\n'
    text += 'app_secret = "s"\n'
    config = _load(tmp_path, text)
    identities = {str(key): lane_identity(lane) for key, lane in config.lanes.items()}
    assert (
        identities["rongcloud.default"] == identities["rongcloud.other"] == "rongcloud:rc-app-key"
    )
    assert identities["yunxin.default"] == "yunxin:rc-app-key"
