"""Starts a real `warden serve` for the integration tests: an isolated
SQLite data directory, a free port, a known bootstrap token."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledgerkit import REPO_ROOT

START_TIMEOUT = 90.0


def binary() -> Path:
    """$WARDEN_BIN, or target/debug/warden at the repository's root.

    With WARDEN_BIN_WAIT=<seconds>, waits that long for it to appear
    (while it is being built); then fails loudly.
    """
    path = Path(os.environ.get("WARDEN_BIN") or REPO_ROOT / "target" / "debug" / "warden")
    deadline = time.monotonic() + float(os.environ.get("WARDEN_BIN_WAIT", "0"))
    while not (path.is_file() and os.access(path, os.X_OK)):
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"no warden binary at {path}: build it (cargo build) or set WARDEN_BIN; "
                "the integration tests need a real server"
            )
        time.sleep(1.0)
    return path


@dataclass
class WardenServer:
    bin: Path
    data_dir: Path
    token: str = field(default_factory=lambda: "pytest-" + secrets.token_urlsafe(32))
    url: str = ""
    process: subprocess.Popen[bytes] | None = None
    log: list[str] = field(default_factory=list)
    #: More WARDEN_* settings for this server (e.g. a tenant sink's allowed networks).
    settings: dict[str, str] = field(default_factory=dict)

    def start(self) -> WardenServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        env.update(
            {
                "WARDEN_BOOTSTRAP_TOKEN": self.token,
                "WARDEN_LOG": "info",
                "WARDEN_LOG__FORMAT": "json",
            }
        )
        env.update(self.settings)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(self.bin), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        listening = threading.Event()

        def read_stderr() -> None:
            assert self.process is not None and self.process.stderr is not None
            for raw in self.process.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("message") == "warden listening" and not listening.is_set():
                    self.url = f"http://{rec['address']}"
                    listening.set()

        def drain_stdout() -> None:
            assert self.process is not None and self.process.stdout is not None
            for raw in self.process.stdout:
                self.log.append("stdout: " + raw.decode("utf-8", "replace").rstrip("\n"))

        threading.Thread(target=read_stderr, daemon=True).start()
        threading.Thread(target=drain_stdout, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not listening.wait(0.1):
            if self.process.poll() is not None:
                raise RuntimeError(f"warden exited with {self.process.returncode}:\n" + "\n".join(self.log[-40:]))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("warden did not log that it listens:\n" + "\n".join(self.log[-40:]))
        return self

    def stop(self) -> None:
        p = self.process
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)

    def run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Runs the binary's CLI (e.g. `verify FILE --key KEY`)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        env.update({"WARDEN_URL": self.url, "WARDEN_TOKEN": self.token})
        return subprocess.run(
            [str(self.bin), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, every: float = 0.1) -> Any:
    """Polls `probe` until it returns something truthy; fails loudly past
    the deadline with what was last seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - kept as the last observation
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
