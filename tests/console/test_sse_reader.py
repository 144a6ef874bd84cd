"""The console's SSE reader (sse.mjs), unit-tested with Node's own test runner. Node is a dev
dependency of this test only (Debian's `nodejs`); without it the test is skipped locally and
fails in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_the_sse_reader_passes_its_node_tests():
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is needed for the console's unit tests (apt-get install nodejs)")
        pytest.skip("node missing (apt-get install nodejs)")
    result = subprocess.run(
        [node, "--test", str(HERE / "sse.test.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
