"""The Grafana dashboard in deploy/grafana/ queries only metrics that LoopLlama exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "loopllama.json"


def test_every_panel_queries_an_exported_metric(sqlite_template):
    from loopllama.telemetry.metrics import Metrics

    metrics = Metrics()
    metrics.watch_database(f"sqlite:///{sqlite_template}")
    try:
        exported = {s.name for family in metrics.registry.collect() for s in family.samples}
        # Histogram buckets and counters appear once observed: name every series they can have.
        for family in metrics.registry.collect():
            if family.type == "histogram":
                exported |= {f"{family.name}_{s}" for s in ("bucket", "count", "sum")}
            elif family.type == "counter":
                exported.add(f"{family.name}_total")
    finally:
        metrics.close()

    dashboard = json.loads(DASHBOARD.read_text())
    targets = [t for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(targets) > 10
    for target in targets:
        used = set(re.findall(r"\b((?:loopllama|process)_[a-z_]+)\b", target["expr"]))
        assert used, target["expr"]
        assert used <= exported, used - exported
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    assert uids == {"${datasource}"}  # the data source is chosen at import
