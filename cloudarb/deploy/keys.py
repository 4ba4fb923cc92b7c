"""Ownership marks: every provider-side instance carries ``cloudarb-<install id>-<deployment>-<line>-<replica>-<attempt>``.

The prefix is this installation's (``CLOUDARB_DEPLOY_INSTALL_ID``, else generated once and kept in the
database), so two CloudArb installations sharing a provider account never touch each other's
instances. The key is the idempotency key (EC2 ClientToken) and the tag, label or name; it is cut to
the provider's ``max_key_length`` by shortening the deployment part, never the counters.
"""

from __future__ import annotations

import re
import secrets
import string

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudarb.config import Settings
from cloudarb.db.models_deploy import DeployMeta

INSTALL_ID = "install_id"
_KEY = re.compile(r"^(?P<dep>[0-9a-f]+)-l(?P<line>\d+)-r(?P<replica>\d+)-a(?P<attempt>\d+)$")
_ALPHABET = string.ascii_lowercase + string.digits


def install_id(session: Session, settings: Settings) -> str:
    """This installation's id: the setting, else the stored one, else a new one stored now."""
    if settings.deploy_install_id:
        return settings.deploy_install_id
    row = session.get(DeployMeta, INSTALL_ID)
    if row is not None:
        return row.value
    value = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    try:
        with session.begin_nested():
            session.add(DeployMeta(name=INSTALL_ID, value=value))
    except IntegrityError:  # another process stored one first
        stored = session.get(DeployMeta, INSTALL_ID)
        assert stored is not None
        return stored.value
    return value


def prefix(install: str) -> str:
    return f"cloudarb-{install}-"


def make_key(install: str, deployment_id: str, line: int, replica: int, attempt: int, *, max_length: int = 64) -> str:
    """The mark of one try of one replica of one line, within ``max_length`` characters."""
    tail = f"-l{line}-r{replica}-a{attempt}"
    room = max_length - len(prefix(install)) - len(tail)
    if room < 6:
        raise ValueError(f"a key cannot fit in {max_length} characters")
    return f"{prefix(install)}{deployment_id[:min(room, 16)]}{tail}"


def parse_key(install: str, key: str) -> tuple[str, int, int, int] | None:
    """(deployment id prefix, line, replica, attempt) of a key of this installation, else None."""
    head = prefix(install)
    if not key.startswith(head):
        return None
    match = _KEY.match(key[len(head):])
    if match is None:
        return None
    return match["dep"], int(match["line"]), int(match["replica"]), int(match["attempt"])
