"""Follow a run live from the terminal: a line per agent as it starts and finishes, a spinner
while a step runs, and a prompt at each pause (answer / approve / reject with a reason)."""

from __future__ import annotations

import functools
import time
from typing import Any

import click

from loopllama.cli import remote_output as out
from loopllama.cli._term import Spinner
from loopllama.client import LoopLlama
from loopllama.client.types import Run

_APPROVE = {"a", "approve", "y", "yes"}
_REJECT = {"r", "reject", "n", "no"}


def _say(line: str) -> None:
    click.echo(line, err=True)


class Follower:
    """Polls a run and narrates it on stderr.

    `prompt=False` (`--json`) never asks: `follow()` then returns at the first pause.
    """

    def __init__(
        self,
        client: LoopLlama,
        *,
        interval: float,
        prompt: bool,
        narrate: bool,
        spinner: Spinner,
    ) -> None:
        self.client = client
        self.interval = interval
        self.prompt = prompt
        self.narrate = narrate
        self.spinner = spinner
        self._started: set[str] = set()
        self._finished: set[str] = set()

    def follow(self, run_id: str) -> Run:
        """Follow the run until it completes or fails, or until a pause nobody answers here."""
        while True:
            run = self.client.runs.retrieve(run_id)
            self._narrate_steps(run)
            if run.is_done:
                return run
            if run.is_paused:
                if not self.prompt:
                    return run
                answer = self.ask(run)
                if answer is None:
                    return run
                self.client.runs.respond(run.id, **answer)
                continue
            self.spinner.wait(self.interval, functools.partial(self._status, run))

    def _narrate_steps(self, run: Run) -> None:
        if not self.narrate:
            return
        for step in run.steps or []:
            if step.id not in self._started:
                self._started.add(step.id)
                self._line(out.step_started(step))
            if out.step_is_finished(step) and step.id not in self._finished:
                self._finished.add(step.id)
                self._line(out.step_finished(step))

    def _status(self, run: Run) -> str:
        running = [s for s in run.steps or [] if not out.step_is_finished(s)]
        if not running:
            return f"run {run.id} {run.status}"
        step = running[-1]
        took = time.time() - step.started_at.timestamp() if step.started_at else None
        return f"{out.step_label(step)} working {out.seconds(took)}"

    def _line(self, text: str) -> None:
        self.spinner.clear()
        _say(text)

    def ask(self, run: Run) -> dict[str, Any] | None:
        """Ask in the terminal; respond()'s keyword arguments, or None if nobody answered."""
        self.spinner.clear()
        for line in out.pending_lines(run):
            _say(line)
        pending = run.pending
        try:
            if pending is not None and pending.is_question:
                answer = click.prompt("Your answer", err=True)
                return {"action": "input", "input": answer}
            if pending is not None and pending.is_approval:
                decision = click.prompt("Approve or reject? [a/r]", err=True, value_proc=_decision)
                if decision == "approve":
                    return {"action": "approve"}
                reason = click.prompt(
                    "Reason (optional, passed to the agent)",
                    default="",
                    show_default=False,
                    err=True,
                )
                return {"action": "reject", "reason": reason or None}
        except click.Abort:
            _say("")
            return None
        _say("This CLI does not know this kind of pause; answer it with the API or the SDK.")
        return None


def _decision(value: str) -> str:
    choice = value.strip().lower()
    if choice in _APPROVE:
        return "approve"
    if choice in _REJECT:
        return "reject"
    raise click.BadParameter("type a (approve) or r (reject)")
