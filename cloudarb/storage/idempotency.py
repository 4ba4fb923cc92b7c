"""Stored answers to POSTs carrying an ``Idempotency-Key``, so a retried request creates nothing twice.

The API builds an ``Idempotency`` per request (a dependency) and hands it to the feature's submit
function, which checks for an earlier answer before it writes and records its own answer inside the
command's transaction: a retry after a lost response, or two identical requests racing, find the
same answer. A key reused with a different body is an input error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudarb.db.models import IdempotencyKey
from cloudarb.errors import InvalidInput


class IdempotencyMismatch(InvalidInput):
    """The key was used before with a different request body."""

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request body",
                         field="Idempotency-Key")


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def lookup(session: Session, *, organization_id: str, key: str) -> IdempotencyKey | None:
    return session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.organization_id == organization_id, IdempotencyKey.key == key)
    ).first()


def save(
    session: Session, *, organization_id: str, key: str, request_hash: str, status_code: int, response: dict[str, Any]
) -> None:
    session.add(
        IdempotencyKey(
            organization_id=organization_id,
            key=key,
            request_hash=request_hash,
            status_code=status_code,
            response=response,
        )
    )
    session.flush()


@dataclass(frozen=True)
class Idempotency:
    """One caller's key for one command."""

    organization_id: str
    key: str

    def scoped(self, scope: str) -> Idempotency:
        """The same key within a narrower scope (hashed to fit the column), e.g. one policy's runs."""
        return Idempotency(self.organization_id, f"{scope}:{hashlib.sha256(self.key.encode()).hexdigest()[:40]}")

    def answer(self, session: Session, payload: Any) -> dict[str, Any] | None:
        """The answer recorded for this key, if any; raises ``IdempotencyMismatch`` for another body."""
        row = lookup(session, organization_id=self.organization_id, key=self.key)
        if row is None:
            return None
        if row.request_hash != fingerprint(payload):
            raise IdempotencyMismatch()
        return dict(row.response)

    def record(self, session: Session, payload: Any, response: dict[str, Any], *, status_code: int = 202) -> None:
        """Record the answer in the command's transaction (a racing twin fails on the primary key)."""
        save(session, organization_id=self.organization_id, key=self.key, request_hash=fingerprint(payload),
             status_code=status_code, response=response)
