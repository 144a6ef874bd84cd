"""What a key may do: its scope, the workflows it is limited to, and when it expires.

The rules, in the order a request meets them (api/deps.py applies 1-3, api/routes/keys.py 4):

    1. authenticated   an active key, not revoked, not expired              else 401
    2. scope           the route's scope is within the key's                else 403
                       (read < run < admin; resource-independent)
    3. workflows       a limited key sees only its workflows and their      else 404
                       runs (api/deps.py's lookups), and cannot create
                       workflows (403, rule 2's `all_workflows`)
    4. keys it makes   no wider than itself: scope, workflows, lifetime     else 403

No HTTP here: the domain errors they raise are mapped at the edge (api/errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

Scope = Literal["read", "run", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}


def covers(have: str, need: str) -> bool:
    """True when a key of scope `have` may do what needs scope `need`."""
    return _RANK[have] >= _RANK[need]


@dataclass(frozen=True, slots=True)
class Grant:
    """A key's powers: scope, workflow limit (None: every workflow) and expiry (None: never)."""

    scope: str = "admin"
    workflow_ids: frozenset[str] | None = None
    expires_at: datetime | None = None

    def within(self, parent: Grant) -> bool:
        """True when this grant gives nothing that `parent` lacks (so `parent` may create it)."""
        if not covers(parent.scope, self.scope):
            return False
        if parent.workflow_ids is not None and (
            self.workflow_ids is None or not self.workflow_ids <= parent.workflow_ids
        ):
            return False
        return parent.expires_at is None or (
            self.expires_at is not None and self.expires_at <= parent.expires_at
        )


class Principal(str):
    """The caller: the account id (it *is* the string, so `store.get_run(conn, account, ...)`
    keeps working) carrying the key that authenticated it and that key's grant."""

    # (no __slots__: CPython refuses them on str subclasses)
    key_id: str
    grant: Grant

    def __new__(cls, account_id: str, key_id: str, grant: Grant) -> Principal:
        principal = super().__new__(cls, account_id)
        principal.key_id = key_id
        principal.grant = grant
        return principal

    @property
    def scope(self) -> str:
        return self.grant.scope

    @property
    def workflow_ids(self) -> frozenset[str] | None:
        return self.grant.workflow_ids


def workflow_limit(account: str) -> frozenset[str] | None:
    """The workflows `account` (a Principal, or a plain account id: no limit) may see."""
    return account.grant.workflow_ids if isinstance(account, Principal) else None


def may_see_workflow(account: str, workflow_id: str) -> bool:
    limit = workflow_limit(account)
    return limit is None or workflow_id in limit


def may_see_endpoint(account: str, workflow_id: str | None) -> bool:
    """A webhook endpoint is visible to a workflow-limited key only when it is limited to one
    of that key's workflows (an endpoint for every workflow is beyond the key's reach)."""
    limit = workflow_limit(account)
    return limit is None or (workflow_id is not None and workflow_id in limit)
