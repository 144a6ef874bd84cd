"""Webhook routes: endpoints (create, list, retrieve, update, delete, rotate the secret), their
deliveries, and a redelivery. The work is in webhooks/; these routes only check and hand over."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response

from loopllama.api.deps import (
    AccountDep,
    ServicesDep,
    get_webhook_or_404,
    get_workflow_or_404,
    parse_json,
    requires,
)
from loopllama.api.errors import JSON
from loopllama.api.openapi import body_of, responses
from loopllama.engine.tools.ssrf import DestinationError, resolve_checked
from loopllama.errors import InvalidRequest, NotFound, PermissionDenied, WebhookDisabled
from loopllama.permissions import may_see_endpoint, workflow_limit
from loopllama.schemas.validation import validate
from loopllama.schemas.webhooks import (
    WebhookCreate,
    WebhookUpdate,
    delivery_public,
    endpoint_public,
)
from loopllama.webhooks import store
from loopllama.webhooks.outbox import tell_senders
from loopllama.webhooks.signing import new_secret

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


async def _check_address(url: str, services: Any) -> None:
    """The `http_request` address rules, before anything is stored (checked again, after DNS,
    at every delivery: an address can change)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        await resolve_checked(parts.hostname or "", port, services.settings.tools.http_allow_hosts)
    except DestinationError as error:
        raise InvalidRequest(f"Invalid url: {error}") from None


@router.get(
    "",
    dependencies=[requires("read")],
    responses=responses("WebhookList"),
    summary="List webhook endpoints",
)
async def list_webhooks(account: AccountDep, services: ServicesDep) -> JSON:
    """The account's endpoints, newest first (secrets are not shown)."""
    async with services.db.read() as conn:
        rows = await store.list_endpoints(conn, account)
    visible = [row for row in rows if may_see_endpoint(account, row["workflow_id"])]
    return JSON({"data": [endpoint_public(row) for row in visible]})


@router.post(
    "",
    dependencies=[requires("admin")],
    status_code=201,
    openapi_extra=body_of(WebhookCreate),
    responses=responses("WebhookWithSecret", 201, errors=(400, 404)),
    summary="Create a webhook endpoint (the answer is the only one showing its secret)",
)
async def create_webhook(request: Request, account: AccountDep, services: ServicesDep) -> JSON:
    body = validate(WebhookCreate, parse_json(await request.body()))
    if body.workflow_id is None and workflow_limit(account) is not None:
        raise PermissionDenied()  # an endpoint for every workflow reaches beyond the key
    if body.workflow_id is not None:
        async with services.db.read() as conn:
            await get_workflow_or_404(conn, account, body.workflow_id)
    await _check_address(body.url, services)
    values = {
        "url": body.url,
        "events": list(dict.fromkeys(body.events)),
        "workflow_id": body.workflow_id,
        "description": body.description,
        "status": "enabled",
        "secret": new_secret(),
    }
    async with services.db.write() as conn:
        row = await store.insert_endpoint(conn, account, values)
    return JSON({"data": endpoint_public(row, with_secret=True)}, status_code=201)


@router.get(
    "/{webhook_id}",
    dependencies=[requires("read")],
    responses=responses("Webhook"),
    summary="Retrieve a webhook endpoint",
)
async def retrieve_webhook(webhook_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    async with services.db.read() as conn:
        row = await get_webhook_or_404(conn, account, webhook_id)
    return JSON({"data": endpoint_public(row)})


@router.patch(
    "/{webhook_id}",
    dependencies=[requires("admin")],
    openapi_extra=body_of(WebhookUpdate),
    responses=responses("Webhook", errors=(400, 404)),
    summary="Update a webhook endpoint (disable it with status: disabled)",
)
async def update_webhook(
    webhook_id: str, request: Request, account: AccountDep, services: ServicesDep
) -> JSON:
    raw = await request.body()
    async with services.db.read() as conn:
        await get_webhook_or_404(conn, account, webhook_id)
    body = validate(WebhookUpdate, parse_json(raw))
    changes: dict[str, Any] = {field: getattr(body, field) for field in body.model_fields_set}
    unlimited = "workflow_id" in changes and changes["workflow_id"] is None
    if unlimited and workflow_limit(account) is not None:  # every workflow: beyond the key
        raise PermissionDenied()
    if changes.get("workflow_id") is not None:
        async with services.db.read() as conn:
            await get_workflow_or_404(conn, account, changes["workflow_id"])
    if "url" in changes:
        await _check_address(changes["url"], services)
    if "events" in changes:
        changes["events"] = list(dict.fromkeys(changes["events"]))
    async with services.db.write() as conn:
        row = await get_webhook_or_404(conn, account, webhook_id)
        changes = await store.update_endpoint(conn, webhook_id, changes)
    return JSON({"data": endpoint_public({**row, **changes})})


@router.delete(
    "/{webhook_id}",
    dependencies=[requires("admin")],
    status_code=204,
    responses=responses(None, 204),
    summary="Delete a webhook endpoint (its pending deliveries are dropped)",
)
async def delete_webhook(webhook_id: str, account: AccountDep, services: ServicesDep) -> Response:
    async with services.db.write() as conn:
        await get_webhook_or_404(conn, account, webhook_id)
        await store.delete_endpoint(conn, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate_secret",
    dependencies=[requires("admin")],
    responses=responses("WebhookWithSecret"),
    summary="Replace the endpoint's secret; every attempt from now on is signed with the new one",
)
async def rotate_secret(webhook_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    async with services.db.write() as conn:
        row = await get_webhook_or_404(conn, account, webhook_id)
        changes = await store.update_endpoint(conn, webhook_id, {"secret": new_secret()})
    return JSON({"data": endpoint_public({**row, **changes}, with_secret=True)})


@router.get(
    "/{webhook_id}/deliveries",
    dependencies=[requires("read")],
    responses=responses("WebhookDeliveryList"),
    summary="The endpoint's 50 newest deliveries, newest first",
)
async def list_deliveries(webhook_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    async with services.db.read() as conn:
        await get_webhook_or_404(conn, account, webhook_id)
        rows = await store.list_deliveries(conn, webhook_id)
    return JSON({"data": [delivery_public(row) for row in rows]})


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    dependencies=[requires("admin")],
    status_code=202,
    responses=responses("WebhookDelivery", 202, errors=(404, 409)),
    summary="One more attempt of a delivery, now, with the same webhook-id",
)
async def redeliver(
    webhook_id: str, delivery_id: str, account: AccountDep, services: ServicesDep
) -> JSON:
    async with services.db.write() as conn:
        endpoint = await get_webhook_or_404(conn, account, webhook_id)
        delivery = await store.get_delivery(conn, webhook_id, delivery_id)
        if delivery is None:
            raise NotFound()
        if endpoint["status"] != "enabled":
            raise WebhookDisabled()
        delivery = await store.redeliver(conn, delivery)
        await tell_senders(conn, [delivery_id])
    return JSON({"data": delivery_public(delivery)}, status_code=202)
