"""The distribution: the wheel builds and carries what the server needs at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_builds_with_migrations_and_entry_point(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("loopllama-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "loopllama = loopllama.cli.main:cli" in archive.read(entry_points).decode()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "loopllama/store/migrations/env.py" in names
    assert "loopllama/store/migrations/versions/0001_initial_schema.py" in names
    assert "loopllama/client/__init__.py" in names
    # The web console ships as files in the package: no build step on install.
    assert "loopllama/console/static/index.html" in names
    assert "loopllama/console/static/app.mjs" in names
    # The base install is the SDK: no server dependency without an extra (standardwebhooks,
    # which has no dependencies, is there for receivers: loopllama.webhooks.verify).
    base = [
        line
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert sorted(line.split()[1].split(">")[0] for line in base) == [
        "click",
        "httpx",
        "pyyaml",
        "standardwebhooks",
    ]
