"""Agora Chat app tokens (AccessToken2): the adapter's builder and the emulator's check, each
against vectors from Agora's published reference implementation, not against each other only.

Sources:
- PUBLISHED: AgoraIO/Tools, DynamicKey/AgoraDynamicKey, the AccessToken2 tests of every language
  (python3/test/AccessToken2Test.py `test_service_chat_app`, and the same string in the Go, Java,
  C#, PHP and C++ tests): app ID 970CA35de60c44645bbae8a215061b33, certificate
  5CFd2fd1755d40ecb72977518be15d3b, issued at 1111111, expire 600, salt 1, chat app privilege.
- PUBLISHED_NODE: the same token as the Node.js reference test writes it (its zlib compresses
  the same bytes differently: the token must be read by content, not by its exact text).
- PUBLISHED_USER: the chat *user* token of the same tests (user 2882341273): valid signature,
  but no app privilege, so the REST API must refuse it.
- DERIVED_A, DERIVED_B: computed with the Python reference builder (python3/src/AccessToken2.py
  and ChatTokenBuilder2.build_app_token with the issue time and salt fixed) for other inputs.
"""

from __future__ import annotations

import pytest

from batchrecall.emulators.agora_token import check_chat_app_token, parse
from batchrecall.vendors.agora_token import build_chat_app_token

APP_ID = "970CA35de60c44645bbae8a215061b33"
CERTIFICATE = "5CFd2fd1755d40ecb72977518be15d3b"
ISSUED = 1111111
PUBLISHED = (
    "007eJxTYNDNaz3snC8huEfHWdz6s98qltq4zqy9fl99Uh0FDvy6F6DAYGlu4OxobJqSamaQbGJiZmKalJSYapFoZGhqYGa"
    "YZGzs/kWAIYKJgYGRAYRZgZgJzGdgAACt8hhr"
)
PUBLISHED_NODE = (
    "007eJxTYNDNaz3snC8huEfHWdz6s98qltq4zqy9fl99Uh0FDvy6F6DAYGlu4OxobJqSamaQbGJiZmKalJSYapFoZGhqYGa"
    "YZGzs/kWAIYKJgYGRAYRZGRgZmMB8BgYArfIYaw=="
)
PUBLISHED_USER = (
    "007eJxTYNAIsnbS3v/A5t2TC6feR15r+6cq8bqAvfaW+tk/Vzz+p6xTYLA0N3B2NDZNSTUzSDYxMTMxTUpKTLVINDI0NTA"
    "zTDI2dv8iwBDBxMDAyADCrEDMCOZzMRhZWBgZmxgamRsDAB+lHrg="
)
DERIVED_A = {
    "app_id": "0123456789abcdef0123456789abcdef",
    "certificate": "fedcba9876543210FEDCBA9876543210",
    "issued_at": 1767225600,
    "expire_s": 86400,
    "salt": 99999999,
    "token": (
        "007eJxTYJi4eKr+oX23D5xjCCuWOSCkWbiM89v3uTO/MaxrPq1jpNmowGBgaGRsYmpmbmGZmJSckpqGzmfYGZrZ"
        "EMjI8P/BV1ZGBlYGRgYmBhCfgQEAuugfAA=="
    ),
}
DERIVED_B = {
    "app_id": APP_ID,
    "certificate": CERTIFICATE,
    "issued_at": 1767225600,
    "expire_s": 3600,
    "salt": 12345678,
    "token": (
        "007eJxTYJB0/buvL8DsqpfztxSjuJxg/aCtB2ZGxJhl8AdxNk08flWBwdLcwNnR2DQl1cwg2cTEzMQ0KSkx1SLR"
        "yNDUwMwwydiYYWdopgAfA4Nf4h4GRgZWIGZiAPEZGADvtxnZ"
    ),
}


# The builder (adapter side).


def test_builds_the_published_chat_app_token() -> None:
    token = build_chat_app_token(APP_ID, CERTIFICATE, issued_at=ISSUED, expire_s=600, salt=1)
    assert token == PUBLISHED


@pytest.mark.parametrize("vector", [DERIVED_A, DERIVED_B], ids=["derived-a", "derived-b"])
def test_builds_the_tokens_derived_from_the_reference(vector: dict[str, object]) -> None:
    token = build_chat_app_token(
        str(vector["app_id"]),
        str(vector["certificate"]),
        issued_at=int(str(vector["issued_at"])),
        expire_s=int(str(vector["expire_s"])),
        salt=int(str(vector["salt"])),
    )
    assert token == vector["token"]


@pytest.mark.parametrize(
    ("app_id", "certificate", "expire_s", "salt"),
    [
        ("970CA35de60c44645bbae8a215061b3", CERTIFICATE, 600, 1),  # 31 digits
        (APP_ID, "5CFd2fd1755d40ecb72977518be15d3g", 600, 1),  # not hex
        (APP_ID, CERTIFICATE, 0, 1),
        (APP_ID, CERTIFICATE, 86401, 1),  # Agora Chat app tokens live at most 24 hours
        (APP_ID, CERTIFICATE, 600, 0),
        (APP_ID, CERTIFICATE, 600, 100_000_000),
    ],
)
def test_refuses_what_the_reference_refuses(
    app_id: str, certificate: str, expire_s: int, salt: int
) -> None:
    with pytest.raises(ValueError, match="must be"):
        build_chat_app_token(app_id, certificate, issued_at=ISSUED, expire_s=expire_s, salt=salt)


# The check (emulator side).


@pytest.mark.parametrize("token", [PUBLISHED, PUBLISHED_NODE], ids=["python", "node"])
def test_the_published_token_is_valid_until_it_expires(token: str) -> None:
    def check(now: float, certificate: str = CERTIFICATE, app_id: str = APP_ID) -> str:
        return check_chat_app_token(token, app_id=app_id, app_certificate=certificate, now=now)

    assert check(ISSUED) == "ok"
    assert check(ISSUED + 599.9) == "ok"
    assert check(ISSUED + 600) == "expired"
    assert check(ISSUED, certificate="0" * 32) == "invalid"
    assert check(ISSUED, app_id="0" * 32) == "invalid"


def test_the_published_token_reads_as_the_reference_parsers_read_it() -> None:
    parsed = parse(PUBLISHED_NODE)
    assert (parsed.app_id, parsed.issued_at, parsed.expire_s, parsed.salt) == (
        APP_ID,
        ISSUED,
        600,
        1,
    )
    assert parsed.privileges == {5: {2: 600}}
    assert parsed.chat_user == ""


def test_a_user_token_is_no_app_token() -> None:
    check = check_chat_app_token(
        PUBLISHED_USER, app_id=APP_ID, app_certificate=CERTIFICATE, now=ISSUED
    )
    assert check == "invalid"
    assert parse(PUBLISHED_USER).chat_user == "2882341273"


@pytest.mark.parametrize("vector", [DERIVED_A, DERIVED_B], ids=["derived-a", "derived-b"])
def test_the_derived_tokens_check(vector: dict[str, object]) -> None:
    issued = int(str(vector["issued_at"]))
    lifetime = int(str(vector["expire_s"]))

    def check(now: int) -> str:
        return check_chat_app_token(
            str(vector["token"]),
            app_id=str(vector["app_id"]),
            app_certificate=str(vector["certificate"]),
            now=now,
        )

    assert check(issued + lifetime - 1) == "ok"
    assert check(issued + lifetime) == "expired"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "006" + PUBLISHED[3:],  # another version
        PUBLISHED[:-8],  # cut short
        PUBLISHED[:40] + ("A" if PUBLISHED[40] != "A" else "B") + PUBLISHED[41:],  # one char off
        "007not base64 at all",
        "007" + "eJwDAAAAAAE=",  # zlib of nothing
    ],
    ids=["empty", "version", "short", "altered", "garbage", "empty-payload"],
)
def test_anything_else_is_invalid(token: str) -> None:
    check = check_chat_app_token(token, app_id=APP_ID, app_certificate=CERTIFICATE, now=ISSUED)
    assert check == "invalid"
