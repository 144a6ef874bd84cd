"""Follow a run live from the terminal: a line per agent as it starts and finishes, the agent's
text as the model generates it (on a terminal, or with --stream-text), and a prompt at each
pause (answer / approve / reject with a reason).

It reads the run's event stream (`runs.stream`): the lines come as things happen, not at the
next poll. At a `run.waiting_input` or a terminal event it fetches the run (with its steps) and
decides from that, so a pause already answered meanwhile is not asked again. A server without
the stream (404 on it while the run exists) is polled every `interval` seconds instead.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from typing import Any

import click

from loopllama.cli import remote_output as out
from loopllama.cli._term import Spinner
from loopllama.client import LoopLlama, NotFoundError
from loopllama.client.types import Run, RunEvent, StepDelta

_APPROVE = {"a", "approve", "y", "yes"}
_REJECT = {"r", "reject", "n", "no"}


def _say(line: str) -> None:
    click.echo(line, err=True)


class Follower:
    """Follows a run and narrates it on stderr.

    `prompt=False` (`--json`) never asks: `follow()` then returns at the first pause.
    `live_text`: write the agents' text to stderr as it is generated.
    """

    def __init__(
        self,
        client: LoopLlama,
        *,
        interval: float,
        prompt: bool,
        narrate: bool,
        spinner: Spinner,
        live_text: bool = False,
    ) -> None:
        self.client = client
        self.interval = interval
        self.prompt = prompt
        self.narrate = narrate
        self.spinner = spinner
        self.live_text = live_text and narrate
        self._started: set[str] = set()
        self._finished: set[str] = set()
        self._steps: dict[str, Any] = {}  # by id, as the stream last showed them
        self._after = 0  # the last event seen
        self._streams = True
        self._mid_line = False  # live text was written without its newline yet

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
            if self._streams:
                self._watch(run_id)
            else:
                self.spinner.wait(self.interval, functools.partial(self._status, run))

    def _watch(self, run_id: str) -> None:
        """Narrate the stream until the run ends or pauses (then `follow` fetches it).

        The stream is read on a thread, so the spinner keeps turning between two events."""
        items: queue.Queue[Any] = queue.Queue()
        after = self._after

        def pump() -> None:
            try:
                for event in self.client.runs.stream(run_id, after=after):
                    items.put(event)
                    if isinstance(event, RunEvent) and _settles(event):
                        return
            except BaseException as exc:  # handed to the main thread
                items.put(exc)
            finally:
                items.put(None)

        threading.Thread(target=pump, name="loopllama-follow", daemon=True).start()
        try:
            while (item := self._next(items)) is not None:
                if isinstance(item, NotFoundError):
                    self.client.runs.retrieve(run_id)  # the run exists: no stream on the server
                    self._streams = False
                elif isinstance(item, BaseException):
                    raise item
                elif isinstance(item, StepDelta):
                    self._text(item.text)
                else:
                    self._after = item.id
                    self._narrate_event(item)
        finally:
            self._end_text()

    def _next(self, items: queue.Queue[Any]) -> Any:
        while True:
            try:
                return items.get(timeout=0.1 if self.spinner.enabled else None)
            except queue.Empty:
                if not self._mid_line:
                    self.spinner.show(self._working())

    def _working(self) -> str:
        running = [step for step in self._steps.values() if step.id not in self._finished]
        if not running:
            return "waiting for the run"
        step = running[-1]
        took = time.time() - step.started_at.timestamp() if step.started_at else None
        return f"{out.step_label(step)} working {out.seconds(took)}"

    def _narrate_event(self, event: RunEvent) -> None:
        if not self.narrate or not event.type.startswith("step."):
            return
        step = event.step
        assert step is not None
        self._steps[step.id] = step
        if step.id not in self._started:
            self._started.add(step.id)
            self._line(out.step_started(step))
        if event.type != "step.started" and step.id not in self._finished:
            self._finished.add(step.id)
            self._line(out.step_finished(step))

    def _text(self, text: str) -> None:
        if self.live_text and text:
            self.spinner.clear()
            click.echo(click.style(text, dim=True), err=True, nl=False)
            self._mid_line = not text.endswith("\n")

    def _end_text(self) -> None:
        if self._mid_line:
            click.echo("", err=True)
            self._mid_line = False

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
        self._end_text()
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


def _settles(event: RunEvent) -> bool:
    """After this event `follow` looks at the run: it ended, or it may wait for a person."""
    return event.is_terminal or event.type == "run.waiting_input"


def _decision(value: str) -> str:
    choice = value.strip().lower()
    if choice in _APPROVE:
        return "approve"
    if choice in _REJECT:
        return "reject"
    raise click.BadParameter("type a (approve) or r (reject)")
