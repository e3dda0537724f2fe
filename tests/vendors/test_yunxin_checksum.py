"""Yunxin 414: a checksum failure or a bad parameter, told apart by the lane's answers."""

from __future__ import annotations

from batchrecall.vendors.yunxin_checksum import (
    FIRST_ANSWERS,
    ITEMS_IN_A_ROW,
    ChecksumEvidence,
    Verdict,
)


def test_the_first_answers_all_414_are_a_credential_failure() -> None:
    evidence = ChecksumEvidence()
    verdicts = [evidence.refused(f"item-{n}") for n in range(FIRST_ANSWERS)]
    assert verdicts == [Verdict.UNDECIDED] * (FIRST_ANSWERS - 1) + [Verdict.CREDENTIALS]
    assert evidence.refused("item-late") is Verdict.CREDENTIALS, "decided for good"


def test_retries_of_one_item_count_among_the_first_answers() -> None:
    """A lane of a single item with a wrong secret still stops."""
    evidence = ChecksumEvidence()
    verdicts = [evidence.refused("only") for _ in range(FIRST_ANSWERS)]
    assert verdicts[-1] is Verdict.CREDENTIALS


def test_a_414_is_a_bad_parameter_once_other_requests_get_through() -> None:
    evidence = ChecksumEvidence()
    assert evidence.refused("bad") is Verdict.UNDECIDED
    evidence.answered()
    assert evidence.refused("bad") is Verdict.PARAMETER


def test_after_the_credentials_worked_an_item_is_asked_twice() -> None:
    evidence = ChecksumEvidence()
    evidence.answered()
    assert evidence.refused("bad") is Verdict.UNDECIDED
    evidence.answered()
    assert evidence.refused("bad") is Verdict.PARAMETER
    assert evidence.refused("worse") is Verdict.UNDECIDED


def test_many_items_in_a_row_refused_after_the_credentials_worked() -> None:
    """A secret changed or the clock drifted mid-run: one item after another is refused."""
    evidence = ChecksumEvidence()
    evidence.answered()
    verdicts = [evidence.refused(f"item-{n}") for n in range(ITEMS_IN_A_ROW)]
    assert verdicts == [Verdict.UNDECIDED] * (ITEMS_IN_A_ROW - 1) + [Verdict.CREDENTIALS]


def test_an_answer_between_refusals_breaks_the_row() -> None:
    evidence = ChecksumEvidence()
    evidence.answered()
    for n in range(3 * ITEMS_IN_A_ROW):
        assert evidence.refused(f"item-{n}") is Verdict.UNDECIDED
        if n % (ITEMS_IN_A_ROW - 1) == ITEMS_IN_A_ROW - 2:
            evidence.answered()
    assert not evidence.credentials_failed


def test_the_words_of_the_answer_play_no_part() -> None:
    """Nothing in the evidence reads the msg: a parameter error that says "author" is one."""
    evidence = ChecksumEvidence()
    evidence.answered()
    assert evidence.refused("operator is not the author") is Verdict.UNDECIDED
    evidence.answered()
    assert evidence.refused("operator is not the author") is Verdict.PARAMETER


def test_refused_again_with_nothing_through_in_between_proves_nothing() -> None:
    """The same few items refused over and over while nothing else is answered: a credential
    problem as much as bad rows, so no item is failed for good on it."""
    evidence = ChecksumEvidence()
    evidence.answered()
    for _ in range(5):
        assert evidence.refused("a") is Verdict.UNDECIDED
        assert evidence.refused("b") is Verdict.UNDECIDED
