"""The `batchrecall` command. `collect` starts on its own modules: a search through an export
is over in well under a second, and the whole command line (the run's engine, the display, the
log) would take a third of it to load. Every other command goes to `main`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["collect"]:
        from batchrecall.cli.collect import collect_main

        return collect_main(words)
    from batchrecall.cli.main import main as whole

    return whole(words)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
