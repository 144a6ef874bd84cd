"""`loopllama webhooks list | create | deliveries | redeliver`, over the SDK.

The secret is printed once, by `create`, as the API shows it once; receivers check deliveries
with `loopllama.webhooks.verify(body, headers, secret)`.
"""

from __future__ import annotations

import click

from loopllama.cli import remote_output as out
from loopllama.cli.remote import json_option, with_client
from loopllama.client import LoopLlama
from loopllama.client.types import WebhookDelivery, WebhookEndpoint

EVENT_TYPES = (
    "run.queued",
    "run.started",
    "step.started",
    "tool_call.updated",
    "step.completed",
    "step.failed",
    "run.waiting_input",
    "run.resumed",
    "run.completed",
    "run.failed",
    "run.cancelled",
)


@click.group()
def webhooks() -> None:
    """Endpoints that receive run events (signed, retried), and their deliveries."""


@webhooks.command("list")
@json_option
@with_client
def webhooks_list(client: LoopLlama, as_json: bool) -> None:
    """List your webhook endpoints, newest first."""
    items = client.webhooks.list()
    if as_json:
        out.echo_json([e.to_dict() for e in items])
    elif not items:
        click.echo("No webhook endpoints yet; add one with `loopllama webhooks create`.", err=True)
    else:
        click.echo(_endpoints_table(items))


@webhooks.command("create")
@click.option("--url", required=True, help="Where to POST the events (http or https).")
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    type=click.Choice(EVENT_TYPES),
    help="An event type to receive; repeat the option for several.",
)
@click.option("--workflow", "workflow_id", help="Only the runs of this workflow.")
@click.option("--description", help="A note for yourself (up to 500 characters).")
@json_option
@with_client
def webhooks_create(
    client: LoopLlama,
    url: str,
    events: tuple[str, ...],
    workflow_id: str | None,
    description: str | None,
    as_json: bool,
) -> None:
    """Register an endpoint; prints its signing secret, which is never shown again."""
    fields = {"workflow_id": workflow_id} if workflow_id else {}
    if description is not None:
        fields["description"] = description
    endpoint = client.webhooks.create(url=url, events=list(events), **fields)
    if as_json:
        out.echo_json(endpoint.to_dict())
        return
    click.echo(_endpoints_table([endpoint]))
    click.echo(f"\nSigning secret (shown once, keep it): {endpoint.secret}")


@webhooks.command("deliveries")
@click.argument("webhook_id")
@json_option
@with_client
def webhooks_deliveries(client: LoopLlama, webhook_id: str, as_json: bool) -> None:
    """The endpoint's 50 newest deliveries, newest first."""
    items = client.webhooks.deliveries(webhook_id)
    if as_json:
        out.echo_json([d.to_dict() for d in items])
    elif not items:
        click.echo("No deliveries yet.", err=True)
    else:
        click.echo(_deliveries_table(items))


@webhooks.command("redeliver")
@click.argument("webhook_id")
@click.argument("delivery_id")
@json_option
@with_client
def webhooks_redeliver(client: LoopLlama, webhook_id: str, delivery_id: str, as_json: bool) -> None:
    """Send a delivery once more, now, with the same webhook-id."""
    delivery = client.webhooks.redeliver(webhook_id, delivery_id)
    if as_json:
        out.echo_json(delivery.to_dict())
    else:
        click.echo(f"Redelivery of {delivery.id} ({delivery.event_type}) queued.")


def _endpoints_table(items: list[WebhookEndpoint]) -> str:
    rows = [
        [e.id, e.status, ",".join(e.events), e.workflow_id or "all", out.clip(e.url, 60)]
        for e in items
    ]
    return out.table(["ID", "STATUS", "EVENTS", "WORKFLOW", "URL"], rows)


def _deliveries_table(items: list[WebhookDelivery]) -> str:
    rows = [
        [
            d.id,
            d.event_type,
            d.status,
            str(d.attempts),
            out.clip(_last(d), 50),
            out.when(d.next_attempt_at) if d.status == "pending" else "-",
            out.when(d.created_at),
        ]
        for d in items
    ]
    headers = ["ID", "EVENT", "STATUS", "ATTEMPTS", "LAST RESULT", "NEXT ATTEMPT", "CREATED"]
    return out.table(headers, rows)


def _last(delivery: WebhookDelivery) -> str:
    if delivery.last_error:
        return delivery.last_error
    return str(delivery.last_status_code) if delivery.last_status_code else "-"
