"""Helpers for the `timepoint serve` tests: model=test runs into one home, and the server started as a
user starts it (`python -m timepoint.cli serve`) on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def make_runs(root: Path, templates: list[str]) -> dict[str, list[str]]:
    """Run each template on the test model into `root/home`'s catalog; template -> its run ids, in order."""
    made: dict[str, list[str]] = {}
    for i, template in enumerate(templates):
        run_dir = root / f"{template}_{i}"
        proc = subprocess.run([sys.executable, "-m", "timepoint", "model=test", f"template={template}",
                               f"hydra.run.dir={run_dir}"], capture_output=True, text=True, cwd=root, timeout=600,
                              env={**os.environ, "TIMEPOINT_HOME": str(root / "home")})
        assert proc.returncode == 0, proc.stderr[-3000:]
        made.setdefault(template, []).append(json.loads((run_dir / "run.json").read_text())["id"])
    return made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(home: Path, *args: str, env: dict | None = None, ready_status: int = 200) -> Iterator[str]:
    """`timepoint serve --home HOME --port FREE ARGS` until the block ends; yields its base URL once it
    answers (with `ready_status`, e.g. 401 when a token guards it)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "timepoint.cli", "serve", "--port", str(port), "--home", str(home),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"timepoint serve exited {proc.returncode}: {proc.stderr.read()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/runs", timeout=5).status_code == ready_status:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "timepoint serve did not answer within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        proc.kill()
        proc.communicate(timeout=30)
