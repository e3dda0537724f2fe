"""The catalog: vendors found through the `batchrecall.vendors` entry points, a plugin that is
broken or takes a name twice refused with its name, and the built-ins' declarations."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from batchrecall import catalog
from batchrecall.catalog import Credentials, PluginError, Setting
from batchrecall.catalog.builtin import EASEMOB, GOEASY, RONGCLOUD, TENCENT, YUNXIN
from batchrecall.catalog.registry import GROUP, load_specs
from batchrecall.cli.main import main
from batchrecall.models import Op, Vendor

BUILTIN_POINTS = [
    EntryPoint(name, f"batchrecall.catalog.builtin:{name.upper()}", GROUP)
    for name in ("easemob", "goeasy", "rongcloud", "tencent", "yunxin")
]
# A registration a test module holds: entry points load it like any other.
RENAMED = EASEMOB._replace(name="other")
RESERVED = EASEMOB._replace(name="limits")
DUPLICATE = EASEMOB._replace()  # another package's "easemob"


@pytest.fixture
def fresh_catalog() -> Iterator[None]:
    catalog.reload()
    yield
    catalog.reload()


def test_the_builtin_vendors_are_batchrecalls_own_entry_points() -> None:
    from importlib.metadata import entry_points

    from batchrecall.catalog.registry import _entry_points

    points = {point.name: point.value for point in entry_points(group=GROUP)}
    builtin = ("easemob", "goeasy", "rongcloud", "tencent", "yunxin")
    for name in builtin:
        assert points[name] == f"batchrecall.catalog.builtin:{name.upper()}"
    # The catalog's own scan finds what importlib.metadata finds.
    assert {(p.name, p.value) for p in _entry_points()} == set(points.items())
    assert tuple(name for name in catalog.names() if name in builtin) == builtin


def test_a_plugin_that_cannot_be_imported_is_named() -> None:
    broken = EntryPoint("acme", "batchrecall_no_such_plugin:ACME", GROUP)
    with pytest.raises(PluginError, match=r"vendor plugin 'acme' \(batchrecall_no_such_plugin"):
        load_specs([*BUILTIN_POINTS, broken])


def test_a_plugin_that_is_not_a_registration_is_named() -> None:
    wrong = EntryPoint("acme", "os:sep", GROUP)
    with pytest.raises(PluginError, match=r"'acme' .* is a str, not a batchrecall\.catalog"):
        load_specs([*BUILTIN_POINTS, wrong])


def test_a_second_registration_of_a_name_is_refused_naming_both() -> None:
    twice = EntryPoint("easemob", "tests.test_catalog:RENAMED", GROUP)
    with pytest.raises(PluginError, match="registered as 'easemob' but names itself 'other'"):
        load_specs([*BUILTIN_POINTS, twice])
    again = EntryPoint("easemob", "tests.test_catalog:DUPLICATE", GROUP)
    with pytest.raises(PluginError, match="registered twice") as caught:
        load_specs([*BUILTIN_POINTS, again])
    assert "batchrecall.catalog.builtin:EASEMOB" in str(caught.value)
    assert "tests.test_catalog:DUPLICATE" in str(caught.value)


def test_a_registration_that_takes_a_config_section_of_the_product_is_refused() -> None:
    point = EntryPoint("limits", "tests.test_catalog:RESERVED", GROUP)
    with pytest.raises(PluginError, match="name 'limits' must be"):
        load_specs([*BUILTIN_POINTS, point])


def test_the_same_registration_found_twice_is_one_vendor() -> None:
    """An editable and a regular install of one package name the same object."""
    assert list(load_specs([*BUILTIN_POINTS, BUILTIN_POINTS[0]])) == [
        "easemob",
        "goeasy",
        "rongcloud",
        "tencent",
        "yunxin",
    ]


def test_a_broken_plugin_stops_a_command_with_its_name(
    fresh_catalog: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from batchrecall.catalog import registry

    broken = EntryPoint("acme", "batchrecall_no_such_plugin:ACME", GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: [*BUILTIN_POINTS, broken])
    job = tmp_path / "job.jsonl"
    job.write_text('{"vendor": "goeasy", "op": "recall", "groupId": "g", "messages": [1]}\n')
    assert main(["validate", str(job)]) == 2
    err = capsys.readouterr().err
    assert "batchrecall: vendor plugin 'acme' (batchrecall_no_such_plugin:ACME)" in err
    assert "ModuleNotFoundError" in err


def test_vendor_names_are_one_object_each() -> None:
    assert Vendor("easemob") is Vendor.EASEMOB
    assert Vendor("tencent") is Vendor("tencent")
    assert Vendor("tencent") == "tencent"


@pytest.mark.parametrize(
    ("op", "options", "configured", "expected"),
    [
        (Op.RECALL, ("type=2",), None, 120.0),
        (Op.RECALL, ("type=2",), 600.0, 600.0),
        (Op.RECALL, ("type=1",), 600.0, 30 * 86400.0),  # one-way: its own window
        (Op.DELETE_MESSAGE, (), 600.0, 30 * 86400.0),  # the console does not change it
        (Op.DELETE_CONVERSATION, ("clear_message=true",), 600.0, None),
    ],
)
def test_recall_windows_are_declared_per_op_and_option(
    op: Op, options: tuple[str, ...], configured: float | None, expected: float | None
) -> None:
    assert YUNXIN.recall_window_s(op, options, configured) == expected


def test_the_builtin_registrations_declare_nothing_wrong() -> None:
    assert [spec.problems() for spec in (EASEMOB, GOEASY, YUNXIN, TENCENT, RONGCLOUD)] == [[]] * 5


def test_numbers_settings_and_identity_defaults_are_checked() -> None:
    config = TENCENT.config
    keys = config.credentials._replace(numbers=("secret_key",))
    assert TENCENT._replace(config=config._replace(credentials=keys)).problems() == [
        "credentials numbers ['secret_key'] are not among its plain keys"
    ]
    unit = Setting(name="timestamp_unit", kind=str, default="us", choices=("s", "ms"))
    wrong = RONGCLOUD._replace(config=RONGCLOUD.config._replace(settings=(unit,)))
    assert wrong.problems() == ["setting timestamp_unit: default 'us' not a choice"]
    recall = RONGCLOUD.ops[Op.RECALL]._replace(identity_defaults={"isAdmin": 0})
    stray = RONGCLOUD._replace(ops={**RONGCLOUD.ops, Op.RECALL: recall})
    assert stray.problems() == ["op recall: identity_defaults ['isAdmin'] not among its identity"]
    assert Credentials(plain=("sdkappid",), numbers=("sdkappid",)).keys == ("sdkappid",)


def test_a_window_of_no_default_is_only_a_lanes_own() -> None:
    assert RONGCLOUD.recall_window_s(Op.RECALL, ("isDelete=0",), None) is None
    assert RONGCLOUD.recall_window_s(Op.RECALL, ("isDelete=1",), 600.0) == 600.0
    assert RONGCLOUD.recall_window_s(Op.CLEAR_HISTORY, (), 600.0) is None
    assert TENCENT.recall_window_s(Op.RECALL, (), 600.0) is None


def test_a_switch_setting_makes_calls_of_one_item() -> None:
    settings = {"batch_recall": False}
    assert EASEMOB.items_per_call(Op.RECALL, settings.__getitem__) == 1
    assert EASEMOB.items_per_call(Op.RECALL, None) == 30
    assert EASEMOB.items_per_call(Op.DELETE_CONVERSATION, settings.__getitem__) == 1


def test_validate_imports_no_adapter_emulator_or_package_metadata(tmp_path: Path) -> None:
    """Finding the vendors costs a command's start only the registrations: no adapter, no
    emulator, no HTTP stack, and no package's metadata parsed (email's parser)."""
    import subprocess
    import sys

    job = tmp_path / "job.jsonl"
    job.write_text(
        '{"vendor": "goeasy", "op": "recall", "groupId": "g", "messages": [1]}\n'
        '{"vendor": "easemob", "op": "recall", "msg_id": "1", "to": "b", "chat_type": "chat"}\n'
    )
    probe = (
        "import sys\n"
        "from batchrecall.cli.main import main\n"
        f"assert main(['validate', {str(job)!r}]) == 0\n"
        "print('imported:', *sorted(m for m in sys.modules if m.startswith(("
        "'batchrecall.vendors', 'batchrecall.emulators', 'httpx', 'email.parser'))))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert ran.stdout.splitlines()[-1] == "imported:"


def test_the_columns_of_what_is_left_keep_their_order() -> None:
    """A CSV of what is left is an operator's file: the built-in vendors' columns come from the
    catalog in the order they always had."""
    from batchrecall.results.report import job_columns

    builtin = (
        "vendor", "op", "app", "ref", "msg_id", "to", "chat_type", "from", "force", "sync_device",
        "username", "channel", "type", "delete_roam", "userAId", "userBId", "groupId", "messages",
        "recaller", "conversation_id", "message_server_id", "description", "ignore_revoke_time",
        "check_team_member_valid", "clear_message", "sent_at",
    )  # fmt: skip
    assert [column for column in job_columns() if column in builtin] == list(builtin)
    assert job_columns()[-1] == "sent_at"


BROKEN_ADAPTER = GOEASY._replace(name="brokenim", adapter="batchrecall_no_such_plugin:Adapter")


def test_a_plugin_whose_adapter_cannot_be_imported_stops_the_run_before_a_row(
    fresh_catalog: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from batchrecall.catalog import registry
    from batchrecall.config import parse_config
    from batchrecall.run.runner import run_job

    point = EntryPoint("brokenim", "tests.test_catalog:BROKEN_ADAPTER", GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: [*BUILTIN_POINTS, point])
    lane = {"base_url": "http://127.0.0.1:9", "appkey": "k"}
    config = parse_config({"brokenim": {"default": lane}}, environ={}, source="test")
    job = tmp_path / "job.jsonl"
    job.write_text('{"vendor": "brokenim", "op": "recall", "groupId": "g", "messages": [1]}\n')
    out = tmp_path / "job.results.jsonl"
    with pytest.raises(PluginError, match="batchrecall_no_such_plugin:Adapter"):
        run_job([job], config, out)
    assert not out.exists() or out.read_text() == ""
