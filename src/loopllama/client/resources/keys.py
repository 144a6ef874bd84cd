"""`client.keys`: create, list and revoke the account's API keys (needs an `admin` key)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopllama.client import _core
from loopllama.client.types import NOT_GIVEN, ApiKey, NotGiven

if TYPE_CHECKING:
    from loopllama.client._client import AsyncLoopLlama, LoopLlama


def key_body(
    label: str | NotGiven | None,
    scope: str | NotGiven,
    workflow_ids: Sequence[str] | NotGiven | None,
    expires_at: datetime | str | NotGiven | None,
) -> dict[str, Any]:
    """The JSON body of a create: NOT_GIVEN fields are left out; a datetime is sent in ISO 8601
    (a naive one is taken as UTC)."""
    body: dict[str, Any] = {}
    if not isinstance(label, NotGiven):
        body["label"] = label
    if not isinstance(scope, NotGiven):
        body["scope"] = scope
    if not isinstance(workflow_ids, NotGiven):
        body["workflow_ids"] = None if workflow_ids is None else list(workflow_ids)
    if isinstance(expires_at, datetime):
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        body["expires_at"] = expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    elif not isinstance(expires_at, NotGiven):
        body["expires_at"] = expires_at
    return body


class Keys:
    """API keys of the account the client's key belongs to.

    key = client.keys.create(label="dashboard", scope="read", workflow_ids=[workflow.id])
    print(key.key)  # shown this once: store it now
    """

    def __init__(self, client: LoopLlama) -> None:
        self._client = client

    def create(
        self,
        *,
        label: str | NotGiven | None = NOT_GIVEN,
        scope: str | NotGiven = NOT_GIVEN,
        workflow_ids: Sequence[str] | NotGiven | None = NOT_GIVEN,
        expires_at: datetime | str | NotGiven | None = NOT_GIVEN,
    ) -> ApiKey:
        """Create a key; the secret is in the result's `key`, returned this once.

        Args:
            label: a note to recognise the key by.
            scope: "read" (every GET), "run" (read + trigger, respond, ...) or "admin"
                (default; everything, the keys API included).
            workflow_ids: limit the key to these workflows (default: the calling key's limit,
                none for an unlimited key).
            expires_at: when the key stops working (default: the calling key's expiry).

        Raises PermissionDeniedError if the new key would be wider than the calling one
        (scope, workflows or lifetime), or if the calling key is not `admin`.
        """
        body = key_body(label, scope, workflow_ids, expires_at)
        return self._client._request(_core.create_key(body))

    def list(self) -> list[ApiKey]:
        """The account's keys, newest first, revoked ones included (never the secrets)."""
        return self._client._request(_core.list_keys())

    def revoke(self, key_id: str) -> None:
        """Revoke a key: requests with it fail at once. A key cannot revoke itself
        (ConflictError); revoking a revoked key is a no-op."""
        return self._client._request(_core.revoke_key(key_id))


class AsyncKeys:
    """API keys of the account (async; see `Keys`)."""

    def __init__(self, client: AsyncLoopLlama) -> None:
        self._client = client

    async def create(
        self,
        *,
        label: str | NotGiven | None = NOT_GIVEN,
        scope: str | NotGiven = NOT_GIVEN,
        workflow_ids: Sequence[str] | NotGiven | None = NOT_GIVEN,
        expires_at: datetime | str | NotGiven | None = NOT_GIVEN,
    ) -> ApiKey:
        """Create a key; the secret is in the result's `key`. See `Keys.create`."""
        body = key_body(label, scope, workflow_ids, expires_at)
        return await self._client._request(_core.create_key(body))

    async def list(self) -> list[ApiKey]:
        """The account's keys, newest first, revoked ones included (never the secrets)."""
        return await self._client._request(_core.list_keys())

    async def revoke(self, key_id: str) -> None:
        """Revoke a key at once (not the calling key itself)."""
        return await self._client._request(_core.revoke_key(key_id))
