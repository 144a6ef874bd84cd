"""`client.webhooks`: endpoints that receive run events, their deliveries, redelivery.

To check a delivery in your receiver, use `loopllama.webhooks.verify(body, headers, secret)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopllama.client import _core
from loopllama.client.types import NOT_GIVEN, NotGiven, WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from loopllama.client._client import AsyncLoopLlama, LoopLlama


def webhook_body(fields: Mapping[str, Any], extra_body: Mapping[str, Any] | None) -> dict:
    """The JSON body of a create or update: NOT_GIVEN fields left out, None sent as null."""
    body = {k: v for k, v in fields.items() if not isinstance(v, NotGiven)}
    if isinstance(body.get("events"), Sequence) and not isinstance(body["events"], str):
        body["events"] = list(body["events"])
    body.update(extra_body or {})
    return body


class Webhooks:
    """Webhook endpoints of the account the API key belongs to."""

    def __init__(self, client: LoopLlama) -> None:
        self._client = client

    def list(self) -> list[WebhookEndpoint]:
        """Every endpoint of the account, newest first (without secrets)."""
        return self._client._request(_core.list_webhooks())

    def create(
        self,
        *,
        url: str,
        events: Sequence[str],
        workflow_id: str | NotGiven | None = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        extra_body: Mapping[str, Any] | None = None,
    ) -> WebhookEndpoint:
        """Register an endpoint (201). The returned object's `secret` is shown only now.

        Args:
            url: http(s) URL, at most 2,000 characters, on a public address.
            events: event types to receive, e.g. `["run.waiting_input", "run.completed"]`.
            workflow_id: only this workflow's runs.
            description: up to 500 characters.

        Raises:
            BadRequestError: a field failed validation or the address is refused.
            NotFoundError: `workflow_id` is not a workflow of yours.
        """
        fields = {
            "url": url,
            "events": events,
            "workflow_id": workflow_id,
            "description": description,
        }
        return self._client._request(_core.create_webhook(webhook_body(fields, extra_body)))

    def retrieve(self, webhook_id: str) -> WebhookEndpoint:
        """One endpoint (without its secret). Raises NotFoundError if it is not yours."""
        return self._client._request(_core.retrieve_webhook(webhook_id))

    def update(
        self,
        webhook_id: str,
        *,
        url: str | NotGiven = NOT_GIVEN,
        events: Sequence[str] | NotGiven = NOT_GIVEN,
        workflow_id: str | NotGiven | None = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        status: str | NotGiven = NOT_GIVEN,
        extra_body: Mapping[str, Any] | None = None,
    ) -> WebhookEndpoint:
        """Change some fields (PATCH); `status` is `enabled` or `disabled`."""
        fields = {
            "url": url,
            "events": events,
            "workflow_id": workflow_id,
            "description": description,
            "status": status,
        }
        body = webhook_body(fields, extra_body)
        return self._client._request(_core.update_webhook(webhook_id, body))

    def delete(self, webhook_id: str) -> None:
        """Delete an endpoint; its pending deliveries are dropped."""
        return self._client._request(_core.delete_webhook(webhook_id))

    def rotate_secret(self, webhook_id: str) -> WebhookEndpoint:
        """A new secret (in the returned object); every later attempt is signed with it."""
        return self._client._request(_core.rotate_webhook_secret(webhook_id))

    def deliveries(self, webhook_id: str) -> list[WebhookDelivery]:
        """The endpoint's 50 newest deliveries, newest first."""
        return self._client._request(_core.list_deliveries(webhook_id))

    def redeliver(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        """One more attempt of a delivery now, with the same `webhook-id`."""
        return self._client._request(_core.redeliver(webhook_id, delivery_id))


class AsyncWebhooks:
    """The async twin of `Webhooks`; same arguments, same answers."""

    def __init__(self, client: AsyncLoopLlama) -> None:
        self._client = client

    async def list(self) -> list[WebhookEndpoint]:
        """Every endpoint of the account, newest first (without secrets)."""
        return await self._client._request(_core.list_webhooks())

    async def create(
        self,
        *,
        url: str,
        events: Sequence[str],
        workflow_id: str | NotGiven | None = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        extra_body: Mapping[str, Any] | None = None,
    ) -> WebhookEndpoint:
        """Register an endpoint (201); see `Webhooks.create`. `secret` is shown only now."""
        fields = {
            "url": url,
            "events": events,
            "workflow_id": workflow_id,
            "description": description,
        }
        return await self._client._request(_core.create_webhook(webhook_body(fields, extra_body)))

    async def retrieve(self, webhook_id: str) -> WebhookEndpoint:
        """One endpoint (without its secret). Raises NotFoundError if it is not yours."""
        return await self._client._request(_core.retrieve_webhook(webhook_id))

    async def update(
        self,
        webhook_id: str,
        *,
        url: str | NotGiven = NOT_GIVEN,
        events: Sequence[str] | NotGiven = NOT_GIVEN,
        workflow_id: str | NotGiven | None = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        status: str | NotGiven = NOT_GIVEN,
        extra_body: Mapping[str, Any] | None = None,
    ) -> WebhookEndpoint:
        """Change some fields (PATCH); see `Webhooks.update`."""
        fields = {
            "url": url,
            "events": events,
            "workflow_id": workflow_id,
            "description": description,
            "status": status,
        }
        body = webhook_body(fields, extra_body)
        return await self._client._request(_core.update_webhook(webhook_id, body))

    async def delete(self, webhook_id: str) -> None:
        """Delete an endpoint; its pending deliveries are dropped."""
        return await self._client._request(_core.delete_webhook(webhook_id))

    async def rotate_secret(self, webhook_id: str) -> WebhookEndpoint:
        """A new secret (in the returned object); later attempts are signed with it."""
        return await self._client._request(_core.rotate_webhook_secret(webhook_id))

    async def deliveries(self, webhook_id: str) -> list[WebhookDelivery]:
        """The endpoint's 50 newest deliveries, newest first."""
        return await self._client._request(_core.list_deliveries(webhook_id))

    async def redeliver(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        """One more attempt of a delivery now, with the same `webhook-id`."""
        return await self._client._request(_core.redeliver(webhook_id, delivery_id))
