"""Which Yunxin 414 is the credentials': evidence (the answer's words, a probe), never a count."""

from __future__ import annotations

import anyio
import pytest

from batchrecall.vendors.yunxin_checksum import ChecksumEvidence, ProbeAnswer, Verdict

pytestmark = pytest.mark.anyio


class Probe:
    def __init__(self, *answers: ProbeAnswer) -> None:
        self.answers = list(answers)
        self.sent = 0

    async def __call__(self) -> ProbeAnswer:
        self.sent += 1
        return self.answers[min(self.sent, len(self.answers)) - 1]


async def test_any_number_of_content_refusals_is_never_the_credentials() -> None:
    evidence = ChecksumEvidence()
    probe = Probe((200, "success"))
    verdicts = [await evidence.refused("message hit by moderation", probe) for _ in range(50)]
    assert set(verdicts) == {Verdict.PARAMETER}
    assert probe.sent == 50, "each refusal is judged by a probe sent after it came"


async def test_the_probe_refused_alike_is_the_credentials_and_stays_so() -> None:
    evidence = ChecksumEvidence()
    probe = Probe((414, "illegal request"))
    assert await evidence.refused("illegal request", probe) is Verdict.CREDENTIALS
    assert await evidence.refused("anything", probe) is Verdict.CREDENTIALS
    assert probe.sent == 1


async def test_an_app_key_named_in_a_content_refusal_is_no_evidence() -> None:
    evidence = ChecksumEvidence()
    probe = Probe((200, "success"))
    assert await evidence.refused("account not exist in appkey", probe) is Verdict.PARAMETER
    assert probe.sent == 1


async def test_a_probe_refused_in_other_words_decides_nothing() -> None:
    evidence = ChecksumEvidence()
    probe = Probe((414, "account_id invalid"))
    assert await evidence.refused("message_server_id invalid", probe) is Verdict.UNDECIDED
    assert not evidence.credentials_failed


@pytest.mark.parametrize("answer", [(None, ""), (416, "throttled"), (500, "server error")])
async def test_a_probe_without_an_api_answer_decides_nothing(answer: ProbeAnswer) -> None:
    evidence = ChecksumEvidence()
    assert await evidence.refused("bad", Probe(answer)) is Verdict.UNDECIDED


@pytest.mark.parametrize("words", ["checksum error", "CurTime expired", "Invalid CheckSum"])
async def test_words_naming_the_signature_decide_without_a_probe(words: str) -> None:
    evidence = ChecksumEvidence()
    probe = Probe((200, "success"))
    assert await evidence.refused(words, probe) is Verdict.CREDENTIALS
    assert probe.sent == 0


async def test_a_probe_sent_before_a_refusal_came_is_not_reused() -> None:
    """The secret changed between two refusals: the second gets its own probe."""
    evidence = ChecksumEvidence()
    probe = Probe((200, "success"), (414, "illegal"))
    assert await evidence.refused("illegal", probe) is Verdict.PARAMETER
    assert await evidence.refused("illegal", probe) is Verdict.CREDENTIALS


async def test_refusals_that_come_together_share_one_probe() -> None:
    evidence = ChecksumEvidence()
    release = anyio.Event()
    sent = 0

    async def slow_probe() -> ProbeAnswer:
        nonlocal sent
        sent += 1
        await release.wait()
        return 200, "success"

    verdicts: list[Verdict] = []

    async def judge() -> None:
        verdicts.append(await evidence.refused("bad id", slow_probe))

    async with anyio.create_task_group() as group:
        group.start_soon(judge)
        await anyio.wait_all_tasks_blocked()
        for _ in range(4):
            group.start_soon(judge)
        await anyio.wait_all_tasks_blocked()
        release.set()
    # The first refusal's probe was already on its way when the others came: they need one more.
    assert sent == 2
    assert verdicts == [Verdict.PARAMETER] * 5
