"""`loopllama quickstart`: the main job end to end on the embedded defaults.

Starts `loopllama serve` on a free port (SQLite in the working directory, the local model when
no provider key is set), creates a key and the default planner->writer workflow over HTTP,
triggers a run, prints each step as it completes and the final output, then stops the server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import click
import httpx

DEFAULT_INPUT = "Write a short brief on why feature flags help a team ship software safely."


@click.command()
@click.option("--input", "run_input", default=DEFAULT_INPUT, show_default=True, help="Run input.")
@click.option(
    "--database",
    default="loopllama-quickstart.db",
    show_default=True,
    help="SQLite file (created if missing).",
)
def quickstart(run_input: str, database: str) -> None:
    """Start a server, create a workflow, run it and show every step."""
    env = dict(os.environ)
    env.setdefault("LOOPLLAMA_DATABASE_URL", f"sqlite:///{Path(database).resolve()}")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    click.echo("LoopLlama quickstart")
    key = _create_key(env)
    log_path = Path(database).with_suffix(".log")
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "loopllama.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(base, server, log_path)
        click.echo(f"  server    {base}  (log: {log_path})")
        # This server stops with the quickstart; `loopllama serve` serves the console for good.
        click.echo(f"  console   {base}/console  (sign in with the api key)")
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            _run(http, run_input)
    finally:
        server.terminate()
        server.wait(timeout=30)
    click.echo(
        "\nWeb console: run `loopllama serve` and open http://127.0.0.1:8080/console"
        " (sign in with an api key from `loopllama keys create`)."
    )


def _run(http: httpx.Client, run_input: str) -> None:
    workflow = _ok(http.post("/v1/workflows", json={"name": "Quickstart brief writer"}))
    roles = " -> ".join(agent["role"] for agent in workflow["crew"])
    click.echo(f"  workflow  {workflow['id']}  {roles}  (model {workflow['model']})")
    run = _ok(http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": run_input}))
    click.echo(f"  run       {run['id']}  {run['status']}")
    click.echo(f"\nInput: {run_input}\n")
    shown: set[tuple[int, str]] = set()
    total = len(workflow["crew"])
    while True:
        run = _ok(http.get(f"/v1/runs/{run['id']}"))
        for step in run["steps"]:
            _show_step(step, total, shown)
        if run["status"] in ("completed", "failed", "waiting_input"):
            break
        time.sleep(0.25)
    if run["status"] == "completed":
        click.echo(f"Final output ({run['tokens_in']} tokens in, {run['tokens_out']} out):\n")
        click.echo(run["output"])
    else:
        click.echo(f"Run ended {run['status']}: {run['error'] or run['pending']}", err=True)
        sys.exit(1)


def _show_step(step: dict, total: int, shown: set[tuple[int, str]]) -> None:
    label = f"[{step['order'] + 1}/{total}] {step['role']}"
    if (step["order"], "start") not in shown:
        shown.add((step["order"], "start"))
        click.echo(f"{label}: started ({step['model']})")
    if step["finished_at"] and (step["order"], "end") not in shown:
        shown.add((step["order"], "end"))
        if step["error"]:
            click.echo(f"{label}: failed: {step['error']}")
            return
        click.echo(f"{label}: finished, {step['tokens_in']} tokens in, {step['tokens_out']} out")
        click.echo(textwrap.indent(step["output"].strip() or "(empty)", "    ") + "\n")


def _ok(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        raise click.ClickException(
            f"{response.request.method} {response.url.path}: {response.status_code} {response.text}"
        )
    return response.json()["data"]


def _create_key(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "loopllama.cli", "keys", "create", "--account", "quickstart"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = result.stdout.strip().splitlines()[-1]
    click.echo(f"  api key   {key[:12]}…  (account quickstart)")
    return key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(base: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise click.ClickException(f"the server exited; see {log_path}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise click.ClickException(f"the server did not start within 60 s; see {log_path}")
