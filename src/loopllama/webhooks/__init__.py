"""Webhooks (Standard Webhooks): run events POSTed, signed, to the account's endpoints.

For receivers (base install, no server dependencies): `verify(payload, headers, secret)`.

The server side is a room of its own, fed by the event log, importing nothing from `api/`:

    signing.py    secrets (`whsec_...`) and the `webhook-*` headers of an attempt
    store.py      endpoint and delivery queries (the claim of an attempt, its result)
    outbox.py     the hook in engine/events.py: delivery rows in the event's transaction
    sender.py     one HTTP attempt: SSRF-checked address, no redirects, timeout, capped read
    attempts.py   claim -> send -> record, shared by both schedulers
    local.py      SQLite: the embedded scheduler (due deliveries, bounded concurrency)
    queue.py      PostgreSQL: procrastinate jobs on the `webhooks` queue, any worker sends

A delivery's life: `pending` (attempts on the retry schedule) -> `succeeded` | `failed`.
At least once: a crash after the receiver answered but before the result was recorded sends
the attempt again once the claim lapses; receivers deduplicate on `webhook-id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["WebhookVerificationError", "verify"]


class WebhookVerificationError(Exception):
    """The payload's signature, or its timestamp, does not check out."""


def verify(payload: bytes | str, headers: Mapping[str, str], secret: str) -> Any:
    """Check a delivery's `webhook-*` headers against its raw body; returns the parsed body.

    `payload` must be the body exactly as received (before any JSON parsing), `headers` the
    request's headers (any case), `secret` the endpoint's `whsec_...` secret. Raises
    `WebhookVerificationError` when the signature does not match or the timestamp is more than
    five minutes away from now (a replay).
    """
    from standardwebhooks.webhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError as _Failed

    try:
        return Webhook(secret).verify(payload, dict(headers))
    except _Failed as error:
        raise WebhookVerificationError(str(error)) from None
    except (ValueError, TypeError) as error:  # a malformed secret or header value
        raise WebhookVerificationError(f"invalid webhook: {error}") from None
