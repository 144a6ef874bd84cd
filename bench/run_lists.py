"""Run lists with a million runs on PostgreSQL: the page queries under EXPLAIN ANALYZE.

    .venv/bin/python -m bench.run_lists [--runs 1000000] [--repeat 20]

Fills a scratch database with `generate_series`: two accounts (90 % / 10 % of the runs), 20
workflows, one run in a hundred `failed`, the rest `completed`, one a second back in time.
Then times, for the big account, the queries `GET /v1/runs` and `GET /v1/workflows/{id}/runs`
make (store/runs.py `list_runs`, 51 rows: a page of 50 and one to tell `has_more`): the first
page, a page half a million runs deep (keyset cursor), a status filter, and a workflow with a
status filter. Each is run `--repeat` times; the figure is PostgreSQL's own execution time
(EXPLAIN ANALYZE), p50 and max, and the plan's top node (an index scan, never a sort of the
table).

Then the same pages through HTTP (`loopllama serve --no-worker` on that database, one
sequential client): `GET /v1/runs?limit=50`, the same half a million runs deep (`after=`),
`?status=failed`, and `GET /v1/workflows/{id}/runs?status=failed`, p50 / p99 of the round trip.

Prints the figures and writes bench/results/run-lists-postgresql.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import httpx
import psycopg

from bench.support import cli, environment, percentile, scratch_database, start_server, stop

RESULTS = Path(__file__).parent / "results"
COLUMNS = (
    "id, account_id, workflow_id, status, input, output, error, total_steps, tokens_in, "
    "tokens_out, started_at, finished_at, created_at, pending, pause_deadline, attempt, "
    "workflow_version, forked_from, active_seconds"
)
FILL = f"""
INSERT INTO runs ({COLUMNS}, snapshot)
SELECT 'r' || lpad(g::text, 24, '0'),
       CASE WHEN g %% 10 = 0 THEN 'acct_small' ELSE 'acct_big' END,
       'wf' || (g %% 20),
       CASE WHEN g %% 100 = 7 THEN 'failed' ELSE 'completed' END,
       'input ' || g, 'output', NULL, 2, 100, 50,
       now() - make_interval(secs => g), now() - make_interval(secs => g),
       now() - make_interval(secs => g), NULL, NULL, 1, 1, NULL, 0,
       '{{}}'::jsonb
FROM generate_series(1, %(runs)s) AS g
"""
SELECT = f"SELECT {COLUMNS.replace('snapshot, ', '')} FROM runs WHERE account_id = 'acct_big'"
ORDER = " ORDER BY created_at DESC, id DESC LIMIT 51"


def queries(cursor: tuple) -> dict[str, str]:
    # As store/runs.py writes it: the cursor run's position looked up in the same statement.
    after = (
        " AND (runs.created_at, runs.id) < (SELECT c.created_at, c.id FROM runs AS c "
        f"WHERE c.id = '{cursor[1]}' AND c.account_id = 'acct_big')"
    )
    return {
        "first_page": SELECT + ORDER,
        "page_500k_deep": SELECT + after + ORDER,
        "status_failed": SELECT + " AND status = 'failed'" + ORDER,
        "workflow_and_status": SELECT + " AND workflow_id = 'wf7' AND status = 'failed'" + ORDER,
        "workflow_deep": SELECT + " AND workflow_id = 'wf3'" + after + ORDER,
    }


def measure(runs: int, repeat: int) -> dict:
    with scratch_database("postgresql") as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO accounts (id, name, created_at) VALUES "
            "('acct_big', 'big', now()), ('acct_small', 'small', now())"
        )
        # The workflow of the per-workflow list (its lookup comes first); the other 19 ids
        # stand for deleted workflows, whose runs stay listed across workflows.
        conn.execute(
            "INSERT INTO workflows (id, account_id, name, status, model, crew, tools, "
            "created_at, updated_at, version, locked) VALUES ('wf7', 'acct_big', 'wf7', "
            "'active', 'claude-bench', '[]', '[]', now(), now(), 1, false)"
        )
        started = time.monotonic()
        conn.execute(FILL, {"runs": runs})
        conn.execute("VACUUM ANALYZE runs")
        fill_seconds = time.monotonic() - started
        cursor = conn.execute(
            "SELECT created_at, id FROM runs WHERE account_id = 'acct_big' "
            "ORDER BY created_at DESC, id DESC OFFSET 500000 LIMIT 1"
        ).fetchone()
        figures = {}
        for name, sql in queries(cursor).items():
            times, plan_top = [], ""
            for _ in range(repeat):
                plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").fetchone()[0][0]
                times.append(plan["Execution Time"])
                node = plan["Plan"]
                while node.get("Node Type") == "Limit" and node.get("Plans"):
                    # The scan under the Limit, not the cursor's lookup (an InitPlan).
                    node = next(
                        p for p in node["Plans"] if p.get("Parent Relationship") != "InitPlan"
                    )
                plan_top = (
                    f"{node['Node Type']} on {node.get('Index Name', node.get('Relation Name'))}"
                )
            figures[name] = {
                "p50_ms": round(statistics.median(times), 3),
                "max_ms": round(max(times), 3),
                "plan": plan_top,
            }
        over_http = _over_http(url, cursor[1], repeat * 5)
    return {
        "backend": "postgresql",
        "runs": runs,
        "fill_seconds": round(fill_seconds, 1),
        "queries": figures,
        "http_round_trip": over_http,
    }


def _over_http(url: str, cursor_id: str, repeat: int) -> dict:
    env = environment(url, "http://127.0.0.1:9")
    key = cli(env, "keys", "create", "--account", "big").strip().splitlines()[-1]
    api, base = start_server(env, "--no-worker")
    paths = {
        # The floor of any authenticated request on this machine, for comparison.
        "GET /v1/workflows/wf7 (one row, baseline)": "/v1/workflows/wf7",
        "GET /v1/runs?limit=50": "/v1/runs?limit=50",
        "GET /v1/runs?limit=50&after=<500k deep>": f"/v1/runs?limit=50&after={cursor_id}",
        "GET /v1/runs?status=failed": "/v1/runs?status=failed",
        "GET /v1/workflows/wf7/runs?status=failed": "/v1/workflows/wf7/runs?status=failed",
    }
    result = {}
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
            for name, path in paths.items():
                timings = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    response = http.get(path)
                    timings.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, response.text
                data = response.json()["data"]
                result[name] = {
                    "rows": len(data) if isinstance(data, list) else 1,
                    "p50_ms": round(percentile(timings, 50), 2),
                    "p99_ms": round(percentile(timings, 99), 2),
                }
    finally:
        stop(api)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    result = measure(args.runs, args.repeat)
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "run-lists-postgresql.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
