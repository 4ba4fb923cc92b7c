"""API and CLI models of hooks and deliveries (separate from the table models)."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cloudarb.errors import InvalidInput
from cloudarb.hooks.events import check_pattern

LOOPBACK_HOSTS = ("localhost",)


def _loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _link_local(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower() in ("metadata.google.internal", "metadata")
    return address.is_link_local or address.is_unspecified or address.is_multicast


class HookCreate(BaseModel):
    """A hook to register: a webhook (``url``) or a command (``command``, an argument list, no shell)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["webhook", "command"]
    url: str | None = Field(default=None, max_length=2000, validate_default=True,
                            description="HTTPS URL (plain HTTP only on loopback).")
    command: list[str] | None = Field(default=None, min_length=1, max_length=64, validate_default=True,
                                      description="Program and arguments; the event's JSON body comes on stdin.")
    events: list[str] = Field(min_length=1, max_length=32, description="Event names, '<group>.*' or '*'.")
    payload_format: Literal["json", "slack"] = Field(
        default="json", description="'slack': a Slack-compatible {text} message instead of the JSON envelope.")
    max_attempts: int | None = Field(default=None, ge=1, le=20, description="Default: CLOUDARB_HOOKS_MAX_ATTEMPTS.")
    timeout_s: float | None = Field(default=None, gt=0, le=600, description="Default: CLOUDARB_HOOKS_TIMEOUT_S.")
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") != "webhook":
            if value is not None:
                raise ValueError("only a webhook has a url")
            return None
        if not value:
            raise ValueError("a webhook needs a url")
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("the url must be https://host/...")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise ValueError("the url must use https (plain http is accepted only on loopback)")
        if _link_local(parts.hostname):
            raise ValueError("link-local and unspecified addresses (cloud metadata services) are refused")
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if info.data.get("kind") != "command":
            if value is not None:
                raise ValueError("only a command hook has a command")
            return None
        if not value or not value[0].strip():
            raise ValueError("a command hook needs a command (program and arguments)")
        if any(len(arg) > 4000 for arg in value):
            raise ValueError("each argument must be at most 4000 characters")
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        try:
            return sorted({check_pattern(p) for p in value})
        except InvalidInput as exc:
            raise ValueError(exc.message) from exc


class HookPatch(BaseModel):
    """Fields to change; absent fields stay. ``enabled: false`` pauses a hook (nothing is queued for it)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    events: list[str] | None = Field(default=None, min_length=1, max_length=32)
    payload_format: Literal["json", "slack"] | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    timeout_s: float | None = Field(default=None, gt=0, le=600)
    enabled: bool | None = None

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return HookCreate._events(value) if value is not None else None


class HookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str
    url: str | None
    command: list[str] | None
    events: list[str]
    payload_format: str
    max_attempts: int
    timeout_s: float
    enabled: bool
    created_by: str
    created_at: datetime


class HookCreated(HookOut):
    secret: str | None = Field(default=None, description="The webhook's signing secret, shown only once.")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    hook_id: str
    event: str
    subject_id: str | None
    blocking: bool
    status: str = Field(description="pending, sending, retrying, delivered or failed.")
    attempts: int
    status_code: int | None
    exit_code: int | None
    output: str | None
    error: str | None
    log: list[dict[str, Any]]
    payload: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class HookTestOut(BaseModel):
    delivery: DeliveryOut
    ok: bool
