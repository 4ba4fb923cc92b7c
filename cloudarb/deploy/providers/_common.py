"""What the provisioning modules do alike with a provider's instances, whatever its API: pick the live
instances carrying a key or this installation's prefix out of a listing, and check an instance id
before it goes into a URL path. Each module keeps its own listing call, wording and id pattern."""

from __future__ import annotations

import re
from collections.abc import Iterable

from cloudarb.deploy.errors import InvalidLaunch
from cloudarb.deploy.providers.base import RemoteInstance, RemoteState


def live(instance: RemoteInstance) -> bool:
    """Whether an instance still counts (a terminated one stays listed for a while at some providers)."""
    return instance.state is not RemoteState.TERMINATED


def live_with_key(instances: Iterable[RemoteInstance], key: str) -> list[RemoteInstance]:
    """The live instances marked with exactly ``key``, in listing order."""
    return [i for i in instances if i.key == key and live(i)]


def live_owned(instances: Iterable[RemoteInstance], prefix: str, *, require_prefix: bool = False) -> list[RemoteInstance]:
    """The live instances whose key starts with this installation's ``prefix``; ``require_prefix``
    refuses an empty prefix (it would claim every instance of the account)."""
    if require_prefix and not prefix:
        raise ValueError("list_owned needs this installation's prefix")
    return [i for i in instances if i.key.startswith(prefix) and live(i)]


def checked_id(provider_id: str, pattern: re.Pattern[str], *, provider: str, what: str) -> str:
    """``provider_id`` stripped, if it matches ``pattern``; else ``InvalidLaunch`` naming ``what`` it
    must be (it goes into a URL path, so nothing else may pass)."""
    text = str(provider_id).strip()
    if not pattern.match(text):
        raise InvalidLaunch(f"{provider}: provider_id {provider_id!r} is not {what}", provider=provider)
    return text
