"""GET /v1/usage's query over a year of runs on PostgreSQL.

    .venv/bin/python -m bench.usage [--runs-per-day 300] [--steps 3]

A scratch database gets a year of runs (365 days x `--runs-per-day`, each with `--steps` steps
of two models, 5 % of them forked copies) for the measured account, and as many for another
account, written with `generate_series` in a few statements. Then the usage query
(store/usage.py, the route's) runs for the API's widest window (92 days), the default (30) and
one day, 20 times each after a warm-up, with the tables analyzed as autovacuum would have.
Figures: p50 and max per window. `--covering` first adds covering indexes (index-only scans
of runs and steps): an experiment, which measured no gain (the time goes to the aggregation).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bench.support import scratch_database
from loopllama.store.db import Database
from loopllama.store.usage import usage_rows

FILL = """
INSERT INTO accounts (id, name, created_at) VALUES ('acct_a', 'a', now()), ('acct_b', 'b', now());
INSERT INTO runs (id, account_id, workflow_id, status, input, total_steps, tokens_in, tokens_out,
                  created_at, snapshot, attempt, active_seconds)
SELECT acct || '_' || n, acct, 'wf_' || (n % 5), 'completed', 'x', :steps, 0, 0,
       :now - make_interval(secs => n * 86400.0 / :per_day), '{}'::jsonb, 1, 0
FROM generate_series(0, :total - 1) AS n, (VALUES ('acct_a'), ('acct_b')) AS accounts(acct);
INSERT INTO steps (id, run_id, "order", role, model, input, tokens_in, tokens_out, transcript,
                   model_calls, forked, cost_usd)
SELECT r.id || '_' || s, r.id, s, 'r', CASE WHEN s % 2 = 0 THEN 'claude-sonnet-4-6'
       ELSE 'gpt-4.1' END, 'x', 1000, 200, '[]'::jsonb, 1, (hashtext(r.id) % 20 = 0),
       0.006
FROM runs r, generate_series(0, :steps - 1) AS s;
"""


COVERING = (
    "CREATE INDEX ix_bench_steps_usage ON steps (run_id) "
    "INCLUDE (model, tokens_in, tokens_out, cost_usd, forked)",
    "CREATE INDEX ix_bench_runs_usage ON runs (account_id, created_at) INCLUDE (workflow_id, id)",
)


async def main(per_day: int, steps: int, covering: bool) -> None:
    total = 365 * per_day
    with scratch_database("postgresql") as url:
        db = Database(url, pool_size=2)
        started = time.monotonic()
        now = datetime.now(UTC)
        async with db.write() as conn:
            for statement in FILL.strip().split(";\n"):
                params = {"steps": steps, "now": now, "per_day": per_day, "total": total}
                await conn.execute(text(statement), params)
        if covering:  # an experiment: index-only scans for the usage query
            async with db.write() as conn:
                for statement in COVERING:
                    await conn.execute(text(statement))
        async with db.engine.connect() as conn:  # VACUUM: outside a transaction
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE runs"))
            await conn.execute(text("VACUUM ANALYZE steps"))
        print(
            f"{2 * total:,} runs and {2 * total * steps:,} steps written in "
            f"{time.monotonic() - started:.0f} s (two accounts, a year each)"
        )
        today = now.date()
        for days in (92, 30, 1):
            start = today - timedelta(days=days - 1)
            timings = []
            for i in range(21):
                began = time.perf_counter()
                async with db.read() as conn:
                    rows = await usage_rows(conn, "acct_a", start, today, sqlite=False)
                if i:  # the first one warms the cache
                    timings.append((time.perf_counter() - began) * 1000)
            print(
                f"  {days:>2} days: {len(rows):>4} rows, p50 {statistics.median(timings):6.1f} ms, "
                f"max {max(timings):6.1f} ms"
            )
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-per-day", type=int, default=300)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--covering", action="store_true", help="add covering indexes first")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs_per_day, arguments.steps, arguments.covering))
