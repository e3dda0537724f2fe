"""The exception tree and the stable error codes that appear in results (imports nothing)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """The command's exit status (SPEC §6)."""

    OK = 0
    INCOMPLETE = 1
    USAGE = 2
    HALTED = 3
    INTERNAL = 4
    INTERRUPTED = 130


class ErrorCode(StrEnum):
    NOT_FOUND = "not-found"
    RECALL_WINDOW_EXCEEDED = "recall-window-exceeded"
    RECIPIENT_NOT_FOUND = "recipient-not-found"
    PERMISSION_DENIED = "permission-denied"
    BAD_REQUEST = "bad-request"
    VENDOR_ERROR = "vendor-error"
    RATE_LIMITED = "rate-limited"
    VENDOR_UNAVAILABLE = "vendor-unavailable"
    TIMEOUT = "timeout"
    AUTH_FAILED = "auth-failed"
    SERVICE_DISABLED = "service-disabled"
    QUOTA_EXHAUSTED = "quota-exhausted"
    BATCH_REJECTED = "batch-rejected"
    INVALID_ROW = "invalid-row"
    DUPLICATE = "duplicate"
    HALTED = "halted"
    LANE_STOPPED = "lane-stopped"
    INTERRUPTED = "interrupted"
    LIMITER_UNAVAILABLE = "limiter-unavailable"


TRANSIENT_CODES = frozenset(
    {ErrorCode.VENDOR_UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.RATE_LIMITED}
)
LANE_STOPPING_CODES = frozenset(
    {ErrorCode.AUTH_FAILED, ErrorCode.SERVICE_DISABLED, ErrorCode.QUOTA_EXHAUSTED}
)
"""Errors that stop a lane: the vendor did nothing, so their items are left to do on resume."""


class BatchrecallError(Exception):
    """Base of every error the product raises on purpose."""

    code: str = "error"


class UsageError(BatchrecallError):
    """Bad command-line use or an unreadable input: exit code 2, nothing sent."""

    code = "usage-error"


class PluginError(UsageError):
    """A vendor plugin that cannot be used (broken, invalid, or a name taken twice)."""

    code = "plugin-error"


class ConfigError(UsageError):
    """A configuration problem, naming the key at fault."""

    code = "config-error"

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config: {key}: {problem}")
        self.key = key
        self.problem = problem


class JobFileError(UsageError):
    """A job file that cannot be read at all (missing, a directory, not a known format)."""

    code = "job-file-error"


class CallError(BatchrecallError):
    """A vendor call failed as a whole; every item of the call shares the outcome."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        http_status: int | None = None,
        vendor_code: str = "",
        retry_after: float | None = None,
        delivered: bool = True,
    ) -> None:
        super().__init__(message)
        self.delivered = delivered
        self.code = code
        self.message = message
        self.http_status = http_status
        self.vendor_code = vendor_code
        self.retry_after = retry_after


class TransientCallError(CallError):
    """Worth another attempt after a backoff (5xx, timeout, dropped connection)."""


class ThrottledError(TransientCallError):
    """The vendor asked us to slow down: the whole lane pauses."""


class UnconfirmedCallError(TransientCallError):
    """The request may have reached the vendor but no answer came (timeout, broken read)."""


class TokenRejectedError(CallError):
    """HTTP 401 on a call: refresh the token and try once more before calling it auth failure."""

    def __init__(
        self, message: str, *, token_generation: int, http_status: int = 401, vendor_code: str = ""
    ) -> None:
        super().__init__(
            ErrorCode.AUTH_FAILED, message, http_status=http_status, vendor_code=vendor_code
        )
        self.token_generation = token_generation


class LaneFatalError(CallError):
    """Credentials, service or plan are wrong: stop the lane at once."""


class PermanentCallError(CallError):
    """The vendor refused the whole call for good (bad parameter, oversized batch)."""


class SplitCallError(CallError):
    """The vendor refused the call as a whole: send its items one by one to learn each outcome."""


class LimiterUnavailableError(LaneFatalError):
    """The shared rate limiter (Redis) stayed unreachable: no permit, so nothing may be sent.

    The lane stops; nothing was sent for its items, so they are left to do for `--resume`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.LIMITER_UNAVAILABLE, message, delivered=False)
