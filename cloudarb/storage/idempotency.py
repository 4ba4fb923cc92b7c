"""Stored answers to POSTs carrying an ``Idempotency-Key``, so a retried request creates nothing twice."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudarb.db.models import IdempotencyKey


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
