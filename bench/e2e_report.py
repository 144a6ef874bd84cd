"""bench.e2e's verdicts: each figure as a ratio to the floor of the same invocation, against
the issue's targets, and the table that prints them."""

from __future__ import annotations

import os
from typing import Any

# figure: (phase, path in the phase's figures, unit, higher is better, limit, limit on PG)
FIGURES = {
    "a": ("a", ("overhead_ms", "p50"), "ms", False, 2.0, 3.0),
    "b": ("b", ("runs_per_s",), "runs/s", True, 0.5, 1 / 3),
    "c": ("c", ("wall_s",), "s", False, 1.5, 2.25),
    "d": ("a", ("trigger_ms", "p50"), "ms", False, 2.0, 3.0),
}
RSS_LIMIT_MIB = 200.0
SPLIT_TO_PG = 1.5  # pg-split's (c) against pg's (c)


def value(figures: dict, phase: str, path: tuple[str, ...]) -> float | None:
    found: Any = figures.get(phase)
    for key in path:
        found = found.get(key) if isinstance(found, dict) else None
    return found


def verdicts(results: dict[str, dict]) -> dict[str, dict]:
    """For each target and figure: value, ratios to the floors, limit, pass (None for the
    floors: they are the reference). A phase with a wrong run fails whatever its figure."""
    floors = [name for name in ("floor-sdk", "floor-raw") if name in results]
    return {
        name: {
            **{
                figure: _check(name, results, figure, floors)
                for figure, (phase, *_) in FIGURES.items()
                if phase in figures
            },
            **({"c_rss": _rss_check(name, figures["c"])} if "c" in figures else {}),
        }
        for name, figures in results.items()
    }


def _check(name: str, results: dict[str, dict], figure: str, floors: list[str]) -> dict:
    phase, path, unit, higher, limit, pg_limit = FIGURES[figure]
    mine = value(results[name], phase, path)
    check: dict[str, Any] = {"value": mine, "unit": unit}
    failures = results[name][phase].get("failures", 0)
    if failures:
        check["failures"] = failures
    for floor in floors:
        theirs = value(results[floor], phase, path)
        check[f"ratio_to_{floor}"] = (
            round(mine / theirs, 3) if mine is not None and theirs else None
        )
    ratio = check[f"ratio_to_{floors[0]}"] if floors else None
    bound = pg_limit if name.startswith("pg") else limit
    if figure == "c" and name == "pg-split" and "c" in results.get("pg", {}):
        theirs = value(results["pg"], phase, path)
        ratio = round(mine / theirs, 3) if mine is not None and theirs else None
        check["ratio_to_pg"], bound = ratio, SPLIT_TO_PG
    if name.startswith("floor") or (ratio is None and not floors):
        check["pass"] = None  # the reference itself, or nothing to compare with
        return check
    within = ratio is not None and (ratio >= bound if higher else ratio <= bound)
    check.update({"ratio": ratio, "limit": round(bound, 3), "pass": within and not failures})
    return check


def _rss_check(name: str, figures: dict) -> dict:
    # serve + worker: the limit holds for the sum, the service's memory.
    each = figures["peak_rss_mib_each"]
    return {
        "value": figures["peak_rss_mib"],
        "unit": "MiB",
        "limit": RSS_LIMIT_MIB,
        "pass": None if name.startswith("floor") else figures["peak_rss_mib"] <= RSS_LIMIT_MIB,
        "each": each if len(each) > 1 else None,
    }


def cell(check: dict | None) -> str:
    if check is None:
        return "-"
    shown = "n/a" if check["value"] is None else f"{check['value']:g} {check['unit']}"
    if check.get("ratio") is not None and check["unit"] != "MiB":
        shown += f" {check['ratio']:.2f}x"
    if check.get("each"):
        shown += " (" + " + ".join(f"{role} {mib:g}" for role, mib in check["each"].items()) + ")"
    if check.get("pass") is not None:
        shown += " PASS" if check["pass"] else " FAIL"
    if check.get("failures"):
        shown += f" ({check['failures']} bad runs)"
    return shown


def table(results: dict[str, dict], checks: dict[str, dict]) -> str:
    columns = [
        ("(a) overhead p50", "a"),
        ("(b) throughput", "b"),
        ("(c) burst wall", "c"),
        ("(c) peak RSS", "c_rss"),
        ("(d) trigger p50", "d"),
    ]
    rows = [["target", *(title for title, _ in columns), "load avg (start/end, 1 min)"]]
    for name, figures in results.items():
        load = f"{figures['loadavg_start'][0]:.1f} / {figures['loadavg_end'][0]:.1f}"
        rows.append([name, *(cell(checks[name].get(key)) for _, key in columns), load])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    floors = [name for name in ("floor-sdk", "floor-raw") if name in results]
    reference = f"Ratios to {floors[0]} of this invocation" if floors else "No floor: no ratios"
    note = (
        f"{reference} (pg-split's (c) to pg's); limits: a<=2x b>=0.5x c<=1.5x d<=2x, PostgreSQL "
        f"1.5x slack; RSS <= {RSS_LIMIT_MIB:g} MiB. {os.cpu_count()} CPUs; load average now "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    return "\n".join([*lines, note])
