"""`loopllama quickstart`: the main job end to end on the embedded defaults.

Starts `loopllama serve` on a free port (SQLite in a state directory, the local model when no
provider key is set), creates a key and the default planner->writer workflow over HTTP (both
remembered in the state directory and reused on the next run), triggers a run, prints each step
as it completes and the final output once, then stops the server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import click
import httpx

DEFAULT_INPUT = "Write a short brief on why feature flags help a team ship software safely."
WORKFLOW_NAME = "Quickstart brief writer"


@click.command()
@click.option("--input", "run_input", default=DEFAULT_INPUT, show_default=True, help="Run input.")
@click.option(
    "--state-dir",
    default=".loopllama",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the quickstart keeps its SQLite database, server log, key and workflow id.",
)
def quickstart(run_input: str, state_dir: Path) -> None:
    """Start a server, create (or reuse) a workflow, run it and show every step."""
    state_dir.mkdir(parents=True, exist_ok=True)
    database = (state_dir / "quickstart.db").resolve()
    log_path = state_dir / "quickstart.log"
    state_path = state_dir / "quickstart.json"
    env = dict(os.environ)
    env.setdefault("LOOPLLAMA_DATABASE_URL", f"sqlite:///{database}")
    # The embedded model writes a few tokens per second on a busy machine: give each of its
    # calls ten minutes rather than the 60 s meant for a remote API.
    env.setdefault("LOOPLLAMA_MODEL_TIMEOUT", "600")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    click.echo("LoopLlama quickstart")
    _phase("starting the server on SQLite (a few seconds)")
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
        state = _load_state(state_path)
        key = _reuse_or_create_key(base, env, state)
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            workflow = _reuse_or_create_workflow(http, state)
            _save_state(state_path, {"api_key": key, "workflow_id": workflow["id"]})
            _run(http, workflow, run_input)
    finally:
        server.terminate()
        server.wait(timeout=30)
    _where_next(env["LOOPLLAMA_DATABASE_URL"], key, workflow["id"])


def _run(http: httpx.Client, workflow: dict, run_input: str) -> None:
    run = _ok(http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": run_input}))
    click.echo(f"  run       {run['id']}  {run['status']}")
    if workflow["model"].startswith("local/"):
        _phase(
            "running on the embedded model: it loads with the first step (about a second), "
            "then each agent writes its answer (10 s to 2 min each on 2 cores)"
        )
    click.echo(f"\nInput: {run_input}\n")
    shown: set[tuple[int, str]] = set()
    total = len(workflow["crew"])
    while True:
        run = _ok(http.get(f"/v1/runs/{run['id']}"))
        for step in run["steps"]:
            _show_step(step, total, shown)
        if run["status"] in ("completed", "failed", "waiting_input"):
            break
        time.sleep(0.5)
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
        if step["order"] + 1 < total:  # the last agent's answer is the final output, shown once
            click.echo(textwrap.indent(step["output"].strip() or "(empty)", "    ") + "\n")


def _reuse_or_create_key(base: str, env: dict[str, str], state: dict) -> str:
    key = state.get("api_key")
    if key:
        probe = httpx.get(
            f"{base}/v1/workflows", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        if probe.status_code == 200:
            click.echo(f"  api key   {key[:12]}…  (reused from the last quickstart)")
            return key
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


def _reuse_or_create_workflow(http: httpx.Client, state: dict) -> dict:
    workflow_id = state.get("workflow_id")
    if workflow_id:
        response = http.get(f"/v1/workflows/{workflow_id}")
        if response.status_code == 200:
            workflow = response.json()["data"]
            click.echo(f"  workflow  {_describe(workflow)}  (reused)")
            return workflow
    workflow = _ok(http.post("/v1/workflows", json={"name": WORKFLOW_NAME}))
    click.echo(f"  workflow  {_describe(workflow)}")
    return workflow


def _describe(workflow: dict) -> str:
    roles = " -> ".join(agent["role"] for agent in workflow["crew"])
    return f"{workflow['id']}  {roles}  (model {workflow['model']})"


def _where_next(database_url: str, key: str, workflow_id: str) -> None:
    binary = Path(sys.executable).parent / "loopllama"
    cli = str(binary) if binary.exists() else (shutil.which("loopllama") or "loopllama")
    click.echo(
        f"\nThe CLI is {cli}. To keep going with this key and workflow:\n"
        f"  export LOOPLLAMA_DATABASE_URL={database_url}\n"
        f"  {cli} serve &\n"
        f"  export LOOPLLAMA_API_KEY={key}\n"
        f'  {cli} run {workflow_id} "your input"\n'
        "The web console is at http://127.0.0.1:8080/console while `serve` runs (sign in with "
        "the key above)."
    )


def _phase(text: str) -> None:
    click.echo(f"==> {text}", err=True)


def _load_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _save_state(path: Path, state: dict) -> None:
    path.write_text(json.dumps(state, indent=2) + "\n")
    path.chmod(0o600)  # it holds an API key


def _ok(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        raise click.ClickException(
            f"{response.request.method} {response.url.path}: {response.status_code} {response.text}"
        )
    return response.json()["data"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(base: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise click.ClickException(f"the server exited; see {log_path}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise click.ClickException(f"the server did not start within 120 s; see {log_path}")
