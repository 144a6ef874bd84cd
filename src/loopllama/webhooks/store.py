"""Webhook queries, on the caller's connection: endpoints of an account, their deliveries, and
the claim / result of one attempt.

The claim is a conditional UPDATE (`claim`): it succeeds for one sender only, while the
delivery is pending, due, its endpoint enabled, and nobody else's claim is alive. A claim
lives for the timeout plus a margin; a sender that dies mid-attempt lets it lapse and the
attempt is made again (at least once). The claim's expiry doubles as a fencing token: a result
is recorded only while the row still carries the claim it was made under.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.ids import new_id, utcnow
from loopllama.store.tables import run_events, webhook_deliveries, webhook_endpoints

E = webhook_endpoints.c
D = webhook_deliveries.c

DELIVERIES_LISTED = 50
CLAIM_MARGIN = 5.0  # seconds beyond the send timeout before a claim counts as abandoned


# -- endpoints ---------------------------------------------------------------------------------


async def insert_endpoint(
    conn: AsyncConnection, account_id: str, values: dict[str, Any]
) -> dict[str, Any]:
    now = utcnow()
    row = {"id": new_id(), "account_id": account_id, "created_at": now, "updated_at": now}
    row.update(values)
    await conn.execute(webhook_endpoints.insert().values(**row))
    return row


async def get_endpoint(
    conn: AsyncConnection, account_id: str, endpoint_id: str
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(webhook_endpoints).where(E.id == endpoint_id, E.account_id == account_id)
        )
    ).first()
    return dict(row._mapping) if row else None


async def list_endpoints(conn: AsyncConnection, account_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(webhook_endpoints)
        .where(E.account_id == account_id)
        .order_by(E.created_at.desc(), E.id.desc())
    )
    return [dict(row._mapping) for row in rows]


async def update_endpoint(
    conn: AsyncConnection, endpoint_id: str, values: dict[str, Any]
) -> dict[str, Any]:
    changes = {**values, "updated_at": utcnow()}
    await conn.execute(update(webhook_endpoints).where(E.id == endpoint_id).values(**changes))
    return changes


async def delete_endpoint(conn: AsyncConnection, endpoint_id: str) -> None:
    """The endpoint and its deliveries: pending ones are dropped, never sent."""
    await conn.execute(delete(webhook_deliveries).where(D.endpoint_id == endpoint_id))
    await conn.execute(delete(webhook_endpoints).where(E.id == endpoint_id))


# -- deliveries as the API shows them ------------------------------------------------------------


async def list_deliveries(conn: AsyncConnection, endpoint_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(webhook_deliveries)
        .where(D.endpoint_id == endpoint_id)
        .order_by(D.created_at.desc(), D.event_id.desc(), D.id.desc())
        .limit(DELIVERIES_LISTED)
    )
    return [dict(row._mapping) for row in rows]


async def get_delivery(
    conn: AsyncConnection, endpoint_id: str, delivery_id: str
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(webhook_deliveries).where(D.id == delivery_id, D.endpoint_id == endpoint_id)
        )
    ).first()
    return dict(row._mapping) if row else None


async def redeliver(conn: AsyncConnection, delivery: dict[str, Any]) -> dict[str, Any]:
    """One more attempt, due now. A finished delivery gets exactly one (`one_shot`); a pending
    one is simply brought forward and keeps its schedule."""
    changes = {
        "status": "pending",
        "next_attempt_at": utcnow(),
        "one_shot": delivery["status"] != "pending" or delivery["one_shot"],
        "claimed_until": None,  # an attempt in flight records nothing: this one is next
    }
    await conn.execute(update(webhook_deliveries).where(D.id == delivery["id"]).values(**changes))
    return {**delivery, **changes}


# -- the sender's side ---------------------------------------------------------------------------
# Built once: these run for every attempt, and building a statement costs more than running it.

_ENABLED = select(E.id).where(E.id == D.endpoint_id, E.status == "enabled").exists()
_CLAIM = (
    update(webhook_deliveries)
    .where(
        D.id == bindparam("b_id"),
        D.status == "pending",
        D.next_attempt_at <= bindparam("b_now"),
        or_(D.claimed_until.is_(None), D.claimed_until < bindparam("b_now")),
        _ENABLED,
    )
    .values(claimed_until=bindparam("b_until"), attempts=D.attempts + 1)
    .returning(D.endpoint_id, D.run_id, D.event_id, D.attempts, D.one_shot)
)
_WHAT_TO_SEND = (
    select(E.url, E.secret, run_events.c.type, run_events.c.data, run_events.c.created_at)
    .select_from(webhook_endpoints)
    .join(
        run_events,
        and_(run_events.c.run_id == bindparam("b_run"), run_events.c.id == bindparam("b_event")),
    )
    .where(E.id == bindparam("b_endpoint"))
)
# A result is recorded only under the claim it was made with (fenced like the engine's
# writes): a redelivery asked for meanwhile, or a sender that took over a lapsed claim, wins.
_MINE = D.claimed_until == bindparam("b_claim", type_=D.claimed_until.type)
_FINISH = (
    update(webhook_deliveries)
    .where(D.id == bindparam("b_id"), _MINE)
    .values(
        status=bindparam("b_status"),
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        next_attempt_at=None,
        claimed_until=None,
        one_shot=False,
        delivered_at=func.coalesce(
            bindparam("b_delivered", type_=D.delivered_at.type), D.delivered_at
        ),
    )
)
_RETRY_AT = (
    update(webhook_deliveries)
    .where(D.id == bindparam("b_id"), _MINE)
    .values(
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        next_attempt_at=bindparam("b_when"),
        claimed_until=None,
    )
)
_DROP_DISABLED = (
    update(webhook_deliveries)
    .where(D.id == bindparam("b_id"), D.status == "pending", ~_ENABLED)
    .values(
        status="failed", last_error="endpoint is disabled", next_attempt_at=None, one_shot=False
    )
)
_DUE = (
    select(D.id)
    .where(
        D.status == "pending",
        D.next_attempt_at <= bindparam("b_now"),
        or_(D.claimed_until.is_(None), D.claimed_until < bindparam("b_now")),
    )
    .order_by(D.next_attempt_at)
    .limit(bindparam("b_limit"))
)
_NEXT_DUE = (
    select(D.next_attempt_at)
    .where(D.status == "pending", D.next_attempt_at > bindparam("b_now"))
    .order_by(D.next_attempt_at)
    .limit(1)
)


async def claim(conn: AsyncConnection, delivery_id: str, hold: float) -> dict[str, Any] | None:
    """Take the delivery's next attempt for `hold` seconds; None if it is not ours to make.

    Returns what the attempt needs: the endpoint's url and current secret (a rotation applies
    to every attempt after it), the event, and the attempt's number.
    """
    now = utcnow()
    until = now + timedelta(seconds=hold)
    params = {"b_id": delivery_id, "b_now": now, "b_until": until}
    claimed = (await conn.execute(_CLAIM, params)).first()
    if claimed is None:
        return None
    params = {
        "b_run": claimed.run_id,
        "b_event": claimed.event_id,
        "b_endpoint": claimed.endpoint_id,
    }
    row = (await conn.execute(_WHAT_TO_SEND, params)).first()
    if row is None:  # the event is gone (a database restored in part): nothing to send
        await finish(
            conn, delivery_id, until, succeeded=False, status_code=None, error="event not found"
        )
        return None
    return {
        "id": delivery_id,
        "claim": until,
        "attempts": claimed.attempts,
        "one_shot": claimed.one_shot,
        "url": row.url,
        "secret": row.secret,
        "type": row.type,
        "data": row.data,
        "created_at": row.created_at,
    }


async def finish(
    conn: AsyncConnection,
    delivery_id: str,
    claim: datetime,
    *,
    succeeded: bool,
    status_code: int | None,
    error: str | None,
) -> None:
    params = {
        "b_id": delivery_id,
        "b_claim": claim,
        "b_status": "succeeded" if succeeded else "failed",
        "b_code": status_code,
        "b_error": error,
        "b_delivered": utcnow() if succeeded else None,
    }
    await conn.execute(_FINISH, params)


async def retry_at(
    conn: AsyncConnection,
    delivery_id: str,
    claim: datetime,
    when: datetime,
    *,
    status_code: int | None,
    error: str | None,
) -> bool:
    """Schedule the next attempt; False if the claim is no longer ours (nothing changed)."""
    params = {
        "b_id": delivery_id,
        "b_claim": claim,
        "b_code": status_code,
        "b_error": error,
        "b_when": when,
    }
    return bool((await conn.execute(_RETRY_AT, params)).rowcount)


async def drop_disabled(conn: AsyncConnection, delivery_id: str) -> bool:
    """A due delivery whose endpoint was disabled is not sent: it fails without an attempt."""
    return bool((await conn.execute(_DROP_DISABLED, {"b_id": delivery_id})).rowcount)


async def due(conn: AsyncConnection, now: datetime, limit: int) -> list[str]:
    """Pending deliveries whose attempt is due and unclaimed, oldest first."""
    return list((await conn.execute(_DUE, {"b_now": now, "b_limit": limit})).scalars())


async def next_due(conn: AsyncConnection, now: datetime) -> datetime | None:
    """When the earliest pending attempt still in the future comes due (one index probe)."""
    return await conn.scalar(_NEXT_DUE, {"b_now": now})


async def release_claims(conn: AsyncConnection) -> None:
    """Forget every claim: for the embedded scheduler at start, the only sender of its file."""
    await conn.execute(
        update(webhook_deliveries)
        .where(D.status == "pending", D.claimed_until.is_not(None))
        .values(claimed_until=None)
    )
