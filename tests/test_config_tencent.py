"""The `[tencent.APP]` config section (SPEC §3)."""

from __future__ import annotations

from typing import Any

import pytest

from batchrecall.config import parse_config
from batchrecall.errors import ConfigError
from batchrecall.models import LaneKey, Vendor

LANE = LaneKey(vendor=Vendor.TENCENT, app="default")


def section(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "base_url": "https://console.tim.qq.com",
        "sdkappid": 1400000000,
        "identifier": "administrator",
        "secret_key": "env:TENCENT_IM_SECRET_KEY",
    }
    body.update(changes)
    return {"tencent": {"default": {k: v for k, v in body.items() if v is not None}}}


ENV = {"TENCENT_IM_SECRET_KEY": "the-secret-key"}


def test_the_spec_example_loads_with_the_default_rate() -> None:
    lane = parse_config(section(), environ=ENV, source="t").lane(LANE)
    assert lane.rate == 100.0
    assert lane.credentials == {"sdkappid": "1400000000", "identifier": "administrator"}
    assert lane.secret("secret_key") == "the-secret-key"
    assert "the-secret-key" not in repr(lane)


def test_sdkappid_may_be_written_as_digits() -> None:
    lane = parse_config(section(sdkappid="1400000000"), environ=ENV, source="t").lane(LANE)
    assert lane.credentials["sdkappid"] == "1400000000"


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"sdkappid": None}, "tencent.default.sdkappid"),
        ({"sdkappid": "14e8"}, "tencent.default.sdkappid"),
        ({"sdkappid": 0}, "tencent.default.sdkappid"),
        ({"sdkappid": True}, "tencent.default.sdkappid"),
        ({"identifier": None}, "tencent.default.identifier"),
        ({"secret_key": None}, "tencent.default.secret_key"),
        ({"secret_key": "env:UNSET_TENCENT_KEY"}, "tencent.default.secret_key"),
        ({"app_key": "x"}, "tencent.default.app_key"),
    ],
)
def test_problems_name_the_key(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(section(**changes), environ=ENV, source="t")
    assert caught.value.key == key
    assert "the-secret-key" not in str(caught.value)
