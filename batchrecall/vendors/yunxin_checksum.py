"""Telling a Yunxin checksum failure from a bad parameter: both answer code 414.

Yunxin answers 414 for a parameter error (a bad id, a message hit by moderation) and for a
CheckSum, CurTime or AppKey failure alike. Counting refusals cannot tell them apart (a job may
start with any number of bad rows), so only evidence about the credentials decides:

- the answer's own words name the signature (CheckSum, CurTime): Yunxin does not document them,
  so this only ever concludes "credentials", never the opposite;
- else a probe: a read-only request signed the same way whose every parameter is valid by
  construction, sent after the refusal came. Refused with the same 414 (code and words): the
  credentials. Any other answer: the signature passed, so the refused request's own content is
  at fault. No answer, a throttle or a 5xx: not known yet.

Refusals that come together share one probe; a probe sent before a refusal came says nothing
about it (a secret may have changed in between).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

import anyio

BAD_PARAMETER = 414
# Words of a signature refusal (inferred: the wording is undocumented), matched lower-case. Only
# these two: a content refusal may well name the app key ("account not in this appkey"), and a
# wrong AppKey is found by the probe anyway.
SIGNATURE_WORDS = ("checksum", "curtime")

ProbeAnswer = tuple[int | None, str]
"""The probe's body code (None: no readable answer) and its message."""


class Verdict(Enum):
    CREDENTIALS = "credentials"
    """Stop the lane: its requests are refused whatever they carry."""
    UNDECIDED = "undecided"
    """Not known yet: send it again later."""
    PARAMETER = "parameter"
    """This request's own content is at fault: it fails for good."""


def names_the_signature(message: str) -> bool:
    lowered = message.lower().replace(" ", "").replace("_", "")
    return any(word in lowered for word in SIGNATURE_WORDS)


@dataclass
class ChecksumEvidence:
    """What one lane knows about its credentials."""

    credentials_failed: bool = False
    probes: int = 0
    """Probes sent so far."""
    _last: ProbeAnswer | None = None
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def refused(self, message: str, probe: Callable[[], Awaitable[ProbeAnswer]]) -> Verdict:
        """A 414 answered with `message`: what it means, probing when the words do not say."""
        if self.credentials_failed:
            return Verdict.CREDENTIALS
        if names_the_signature(message):
            self.credentials_failed = True
            return Verdict.CREDENTIALS
        started_before = self.probes
        async with self._lock:
            if self.probes == started_before or self._last is None:
                # No probe was sent since this refusal came: send one now.
                self.probes += 1
                self._last = await probe()
            answer = self._last
        verdict = _verdict(answer, message)
        if verdict is Verdict.CREDENTIALS:
            self.credentials_failed = True
        return verdict


def _verdict(answer: ProbeAnswer, message: str) -> Verdict:
    code, probe_message = answer
    if code == BAD_PARAMETER:
        # The probe cannot be wrong in content: refused alike, it is the signature. Refused
        # in other words, its 414 does not explain this one.
        return Verdict.CREDENTIALS if probe_message == message else Verdict.UNDECIDED
    if code is None or code == 416 or code >= 500:
        return Verdict.UNDECIDED
    return Verdict.PARAMETER
