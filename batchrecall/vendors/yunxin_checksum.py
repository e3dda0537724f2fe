"""Telling a Yunxin checksum failure from a bad parameter: both answer code 414.

Yunxin answers 414 for a parameter error and for a CheckSum, CurTime or AppKey failure alike,
and the wording of the latter is not documented. So the words are not read: the lane's answers
are. A signature is checked before anything else, so an answer about the request itself (200,
404, 508 ...) shows the credentials work; a lane whose first answers are all 414, or whose
answers turn to 414 for one item after another, has a credential (or clock) problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

# The lane's first answers all 414, this many of them: the credentials are wrong.
FIRST_ANSWERS = 3
# Once the credentials worked: this many different items answered 414 in a row (a secret changed,
# the clock drifted) is a credential failure, not that many bad rows in a row.
ITEMS_IN_A_ROW = 5


class Verdict(Enum):
    CREDENTIALS = "credentials"
    """Stop the lane: its requests are refused whatever they carry."""
    UNDECIDED = "undecided"
    """Not known yet: send it again later, when other answers have told more."""
    PARAMETER = "parameter"
    """This item's own request is at fault: it fails for good."""


@dataclass
class ChecksumEvidence:
    """What one lane's answers so far say about its credentials."""

    verified: bool = False
    """Some answer other than 414 came back: the signature passed at least once."""
    refusals: int = 0
    """414 answers before the lane was verified."""
    credentials_failed: bool = False
    _streak: set[str] = field(default_factory=set)
    _refused_once: set[str] = field(default_factory=set)

    def answered(self) -> None:
        """An answer about the request itself (any code but 414, 416 and 5xx)."""
        self.verified = True
        self._streak.clear()

    def refused(self, item: str) -> Verdict:
        """A 414 for the request carrying `item` (the call's items, as one key)."""
        if self.credentials_failed:
            return Verdict.CREDENTIALS
        refused_since_last_answer = item in self._streak
        self._streak.add(item)
        if not self.verified:
            self.refusals += 1
            self._refused_once.add(item)
            return self._decide(self.refusals >= FIRST_ANSWERS)
        if len(self._streak) >= ITEMS_IN_A_ROW:
            return self._decide(True)
        if item in self._refused_once and not refused_since_last_answer:
            # Refused again although other requests got through in between: it is at fault.
            self._refused_once.discard(item)
            return Verdict.PARAMETER
        self._refused_once.add(item)
        return Verdict.UNDECIDED

    def _decide(self, credentials: bool) -> Verdict:
        if credentials:
            self.credentials_failed = True
            self._refused_once.clear()
            return Verdict.CREDENTIALS
        return Verdict.UNDECIDED
