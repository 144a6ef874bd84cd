"""Endpoint secrets and the Standard Webhooks headers of one attempt.

`webhook-signature` is `v1,` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), the key
being the base64-decoded part of the secret after `whsec_`; the `standardwebhooks` package
computes it, so its `Webhook.verify` accepts what we send by construction.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64 random bytes


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def headers(secret: str, delivery_id: str, body: str, now: datetime | None = None) -> dict:
    """The three `webhook-*` headers (and the content type) for sending `body` now."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    signature = Webhook(secret).sign(delivery_id, moment, body)
    return {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }
