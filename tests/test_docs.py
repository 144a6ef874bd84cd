"""The documentation in docs/: the site builds in strict mode, and it keeps up with the code
(every route of the OpenAPI document, every setting, every metric)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _normalized(text: str) -> str:
    """Path parameters compared by position only (`{id}` and `{workflow_id}` alike)."""
    return re.sub(r"\{[^}/]*\}", "{}", text.replace("`", ""))


def test_the_site_builds_in_strict_mode(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for page in ("index.html", "operations/index.html", "architecture/index.html"):
        assert (tmp_path / page).exists(), page


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_every_route_of_the_openapi_document_is_documented(anonymous):
    """Each `METHOD /path` of /openapi.json appears in some docs/*.md file.

    The API reference is docs/api.md. The assertion lists the routes missing from the docs."""
    assert (DOCS / "api.md").exists()
    document = (await anonymous.get("/openapi.json")).json()
    text = _normalized("\n".join(p.read_text() for p in sorted(DOCS.glob("*.md"))))
    missing = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        # Whole paths only: `POST /v1/workflows` is not documented by `POST /v1/workflows/{}/runs`.
        if not re.search(re.escape(f"{method.upper()} {_normalized(path)}") + r"(?![\w/{])", text)
    ]
    assert not missing, f"routes not documented in docs/*.md: {missing}"


def test_every_setting_is_in_the_operations_guide():
    from loopllama.engine.queue.settings import WorkerSettings
    from loopllama.settings import Settings

    def variables(model):
        for field in model.model_fields.values():
            if isinstance(field.annotation, type) and hasattr(field.annotation, "model_fields"):
                yield from variables(field.annotation)
            else:
                yield field.validation_alias.choices[0]

    guide = (DOCS / "operations.md").read_text()
    names = [*variables(Settings), *variables(WorkerSettings)]
    assert len(names) > 20
    assert [name for name in names if f"`{name}`" not in guide] == []


def test_every_metric_is_in_the_operations_guide(sqlite_template):
    from loopllama.telemetry.metrics import Metrics

    metrics = Metrics()
    metrics.watch_database(f"sqlite:///{sqlite_template}")
    try:
        names = {
            family.name
            for family in metrics.registry.collect()
            if family.name.startswith("loopllama_")
        }
    finally:
        metrics.close()
    guide = (DOCS / "operations.md").read_text()
    assert "loopllama_queue_depth" in names
    # A counter's family is named without the `_total` its samples carry.
    documented = {n for n in names if f"`{n}`" in guide or f"`{n}_total`" in guide}
    assert names - documented == set()
