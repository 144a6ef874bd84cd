"""What agents are told: the default crew, each step's input, and the ask_human tool."""

from __future__ import annotations

from collections.abc import Sequence

from loopllama.providers.base import ToolSpec

DEFAULT_CREW: list[dict[str, str]] = [
    {
        "role": "planner",
        "systemPrompt": (
            "You are a planning agent. Read the request and write a short, numbered plan "
            "for answering it: the key points to cover, in order, and anything to watch out "
            "for. Do not write the final answer."
        ),
    },
    {
        "role": "writer",
        "systemPrompt": (
            "You are a writing agent. Using the original request and the plan from the prior "
            "agent, write the final answer: clear, accurate and no longer than needed."
        ),
    },
]

ASK_HUMAN = ToolSpec(
    name="ask_human",
    description=(
        "Ask the human who runs this workflow a question and wait for the answer. Use it when "
        "you need information, a preference or a decision that only a person can give."
    ),
    input_schema={
        "type": "object",
        "properties": {"question": {"type": "string", "description": "The question to ask."}},
        "required": ["question"],
    },
)


def step_input(run_input: str, prior: Sequence[tuple[str, str]]) -> str:
    """The user message of a step: the run input, then every prior agent's output by role."""
    if not prior:
        return run_input
    outputs = "\n\n".join(f"--- {role} ---\n{output}" for role, output in prior)
    return f"Original request:\n{run_input}\n\nPrior agent output:\n{outputs}"
