"""A throwaway Redis server on a free loopback port: no persistence, its files in a temp dir."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

READY_LINE = b"Ready to accept connections"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """`redis-server` in the foreground; `kill()` and `start()` again keep the same port."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and return once it accepts connections (it says so on stdout)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
            "--daemonize", "no",
            "--loglevel", "notice",
        ]  # fmt: skip
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if READY_LINE in line:
                break
        else:
            process.wait()
            raise RuntimeError(b"redis-server did not start:\n" + b"".join(seen[-10:]))
        # Drain the rest of its log so that a full pipe never blocks the server.
        self._drain = threading.Thread(target=process.stdout.read, daemon=True)
        self._drain.start()
        self.process = process

    def kill(self) -> None:
        """SIGKILL: the server forgets everything (no persistence), as after a crash."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self._drain.join()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()
            self._drain.join()
            self.process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def in_ci() -> bool:
    return bool(os.environ.get("CI"))
