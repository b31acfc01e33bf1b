"""KafkaJS from the tests: runs tests/kafkajs_driver.js (one operation per process) with the KafkaJS
that tests/setup installs under $HOME/.cache/skiff/node (pinned in tests/package.json)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("kafkajs_driver.js")
NODE_DIR = Path(os.environ.get("SKIFF_NODE_DIR", Path.home() / ".cache/skiff/node"))


def available() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules/kafkajs").is_dir()


def run(op: str, brokers: list[str] | str, timeout: float = 120.0, **args) -> dict:
    """One driver operation; its JSON answer. Fails the test if the driver itself fails."""
    if not available():
        pytest.skip(f"KafkaJS is not installed under {NODE_DIR} (run tests/setup)")
    if isinstance(brokers, str):
        brokers = brokers.split(",")
    req = {"op": op, "brokers": brokers, **args}
    env = dict(os.environ, NODE_PATH=str(NODE_DIR / "node_modules"))
    out = subprocess.run(
        ["node", str(DRIVER), json.dumps(req)], capture_output=True, text=True, timeout=timeout, env=env
    )
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0 and lines, f"kafkajs {op} failed ({out.returncode}): {out.stdout}{out.stderr[-2000:]}"
    return json.loads(lines[-1])
