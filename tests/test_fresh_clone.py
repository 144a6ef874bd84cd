"""The README's commands in a copy of the repository with nothing beside it (no sibling
folders), as a new user who just cloned it runs them.

The install itself needs PyPI, so the copy gets a `.venv` that borrows this test run's installed
packages (a `.pth` file) and is marked up to date, and `scripts/bootstrap` only checks it; the
rest is the README's one command, `scripts/quickstart`, against a fake Anthropic server.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.fakes.provider_server import text

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
USER_DOCS = ("README.md", "docs/api.md")


def tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: take the tree
        skip = {".git", ".venv", ".loopllama", "__pycache__", ".pytest_cache", ".ruff_cache"}
        return [
            str(path.relative_to(ROOT))
            for path in ROOT.rglob("*")
            if path.is_file() and not skip.intersection(path.relative_to(ROOT).parts)
        ]
    names = [name for name in listed.decode().split("\0") if name]
    return [name for name in names if (ROOT / name).is_file()]  # deleted but not yet committed


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Nested two levels deep, so that nothing beside the copy (a `../shared`) can be found.
    copy = tmp_path_factory.mktemp("fresh") / "parent" / "loopllama"
    for name in tracked_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return copy


def test_the_docs_stay_inside_the_repository(clone: Path) -> None:
    for name in USER_DOCS:
        text_ = (clone / name).read_text()
        assert "../shared" not in text_ and "shared/spec" not in text_, name
        for link in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text_):
            assert (clone / Path(name).parent / link).exists(), f"{name} links to {link}"
    assert (clone / "LICENSE").read_text().lstrip().startswith("Apache License")
    readme = (clone / "README.md").read_text()
    assert "pip install -e '.[server,local]'" in readme and ".venv/bin/loopllama" in readme
    for script in ("scripts/bootstrap", "scripts/quickstart", "scripts/test", ".ci/run"):
        assert "shared" not in (clone / script).read_text().replace("shared by", ""), script
        assert os.access(clone / script, os.X_OK), script


def _borrowed_venv(clone: Path) -> None:
    """A `.venv` that sees this run's packages and the copy's own source, marked installed."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(clone / ".venv")], check=True
    )
    site = next((clone / ".venv" / "lib").glob("python3*/site-packages"))
    paths = [str(clone / "src"), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    (site / "borrowed.pth").write_text("\n".join(dict.fromkeys(paths)) + "\n")
    # The console script pip makes from [project.scripts].
    script = clone / ".venv" / "bin" / "loopllama"
    script.write_text(
        f"#!{clone / '.venv' / 'bin' / 'python'}\n"
        "import sys\nfrom loopllama.cli.main import cli\nsys.exit(cli())\n"
    )
    script.chmod(0o755)
    installed = (clone / "pyproject.toml").read_bytes() + (clone / "scripts/bootstrap").read_bytes()
    stamp = hashlib.sha256(installed).hexdigest()
    (clone / ".venv" / ".loopllama-installed").write_text(stamp + " server,local,dev\n")


@pytest.mark.timeout(600)
def test_quickstart_in_a_fresh_copy_twice(clone: Path, provider_server) -> None:
    _borrowed_venv(clone)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(clone.parent),
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": provider_server.url,
    }
    provider_server.enqueue(text("1. Say why.\n2. Say how."), text("Flags let you ship safely."))

    first = subprocess.run(
        ["scripts/quickstart", "--input", "Why feature flags?"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "[1/2] planner: finished" in out and "1. Say why." in out
    assert out.count("Flags let you ship safely.") == 1  # the final output, printed once
    assert f"The CLI is {clone / '.venv' / 'bin' / 'loopllama'}" in out
    assert "==> starting the server" in first.stderr and "==> creating .venv" not in first.stderr
    # Everything it keeps is in the git-ignored state directory; nothing else appears.
    state = clone / ".loopllama"
    assert {p.name for p in state.iterdir()} == {
        "quickstart.db",
        "quickstart.log",
        "quickstart.json",
    }
    assert ".loopllama/" in (clone / ".gitignore").read_text().splitlines()
    workflow_id = re.search(r"workflow  (\w+)", out).group(1)
    # The command it prints works: the CLI from the copy's .venv.
    cli = subprocess.run(
        [str(clone / ".venv" / "bin" / "loopllama"), "--help"], capture_output=True, text=True
    )
    assert cli.returncode == 0 and "quickstart" in cli.stdout

    second = subprocess.run(
        ["scripts/quickstart", "--input", "Again?"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "(reused from the last quickstart)" in second.stdout
    assert f"workflow  {workflow_id}" in second.stdout and "(reused)" in second.stdout
    assert "echo: Again?" in second.stdout or "Original request:\nAgain?" in second.stdout
