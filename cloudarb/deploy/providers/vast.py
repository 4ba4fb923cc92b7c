"""Vast.ai provisioning: accept an ask, mark it with a label, list by label, destroy, prove absence.

Written against Vast's published REST reference (checked with the search tool, docs.vast.ai):

- Create (``/api-reference/instances/create-instance``, ``/api-reference/creating-instances-with-api``):
  ``PUT /api/v0/asks/{ask_id}/`` with ``image``, ``label``, ``disk`` (GB), ``runtype``,
  ``target_state``, ``price`` (the bid, *only* for interruptible instances), ``env`` (an object; port
  mappings ride in it as ``"-p 8000:8000": "1"``) and ``onstart``; the answer is
  ``{"success": true, "new_contract": <instance id>}``. ``new_contract`` is the truth: Cloud GPU
  Shopper saw ``success: false`` with ``new_contract > 0`` for interruptible bids while the instance
  existed, so a positive ``new_contract`` is always adopted. We also send ``cancel_unavail: true``
  (as the official CLI can) so an unavailable machine refuses instead of leaving a stopped contract
  that bills disk. An offer rented by someone else between search and create answers ``no_such_ask``
  (HTTP 400 in one client, 410 in another: the string is matched, not the status) -> ``OfferGone``.
- List (``/api-reference/instances/show-instances-v1``): ``GET /api/v1/instances/`` with
  ``select_filters`` (JSON, e.g. ``{"label": {"eq": key}}``), ``limit`` 1-25 and ``after_token``,
  paged until ``next_token`` is empty; the answer carries ``instances`` and ``total_instances``.
  Checked against the official CLI (``vast-ai/vast-cli:vast.py`` ``_fetch_all_instances_v1``: the
  same parameters plus ``order_by`` by id; ``create__instance``; ``attach__ssh``).
  The label filter is exact (``eq``/``in``), so ``find`` filters on the server while ``list_owned``
  (a prefix) reads every page and keeps labels starting with the prefix. A page that fails aborts the
  whole listing (``ListingIncomplete``).
- Show (``/api-reference/instances/show-instance``): ``GET /api/v0/instances/{id}/`` answers
  ``{"instances": {...}}``; after a destroy it answers ``{"instances": null}`` (observed by Cloud GPU
  Shopper) -- the proof of absence. ``cur_state`` ``unloaded`` means released on destroy (terminated).
  A 404 is not documented as proof and is treated as a transient error (the instance stays tracked).
- Destroy (``/api-reference/instances/destroy-instance``): ``DELETE /api/v0/instances/{id}/`` ->
  ``{"success": true, "msg": ...}``; stop/start: ``PUT /api/v0/instances/{id}/`` ``{"state": ...}``.
- SSH keys: the key in a create request is unreliable (Cloud GPU Shopper's live bug log), so the key
  is written by ``onstart`` and also attached after the create with ``POST /api/v0/instances/{id}/ssh/``
  ``{"ssh_key": ...}`` (a failed attach is logged: the instance exists and must stay tracked).
- States (``/cli/reference/show-instance``): ``actual_status`` null (provisioning), ``loading``,
  ``running``, ``stopped``, ``frozen`` (paused with memory; GPU still charged), ``exited``,
  ``rebooting``, ``unknown``, ``offline``.
- Rate limits (``/api-reference/rate-limits-and-errors``): a minimum interval per endpoint and
  identity; 429 with body ``API requests too frequent`` and **no Retry-After header**, so
  ``RateLimited.retry_after_s`` stays None. Cloud GPU Shopper settled on 1 request/s, burst 2.
- Billing: per second; GPU while ``running``/``frozen``, disk from creation until destroy.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import httpx

from cloudarb.deploy.errors import (
    InvalidLaunch,
    ListingIncomplete,
    NoCapacity,
    OfferGone,
    ProviderUnavailable,
    ProvisionError,
    QuotaExceeded,
)
from cloudarb.deploy.providers._common import checked_id, live_owned, live_with_key
from cloudarb.deploy.providers._http import RestClient, error_body
from cloudarb.deploy.providers.base import (
    Capabilities,
    LaunchSpec,
    ProviderConfig,
    Provisioner,
    RemoteInstance,
    RemoteState,
)

logger = logging.getLogger(__name__)

KEY = "vast"
DEFAULT_BASE_URL = "https://console.vast.ai"
PAGE_LIMIT = 25
"""The v1 list's largest page (``limit`` 1-25)."""
MAX_PAGES = 2000
"""A guard against a provider that never ends a listing (50,000 instances)."""

CAPABILITIES = Capabilities(
    spot=True,
    stop_start=True,
    mark="label",
    idempotency_token=False,
    list_filter=True,
    billing_granularity_s=1,
    billing_minimum_s=1,
    requests_per_s=1.0,
    burst=2,
    listing_lag_s=300.0,
    max_key_length=64,
    provider_ttl=False,
    reports_rate=True,
)
"""Listing lag: Cloud GPU Shopper's ghost check destroyed live sessions within about 4 minutes
because new Vast instances were missing from lists, hence a 5-minute window (it settled on a
10-minute ghost grace)."""

_STATES: dict[str | None, RemoteState] = {
    None: RemoteState.PENDING,
    "": RemoteState.PENDING,
    "created": RemoteState.PENDING,
    "loading": RemoteState.PENDING,
    "rebooting": RemoteState.PENDING,
    "running": RemoteState.RUNNING,
    "frozen": RemoteState.RUNNING,
    "stopped": RemoteState.STOPPED,
    "exited": RemoteState.STOPPED,
    "unknown": RemoteState.UNKNOWN,
    "offline": RemoteState.UNKNOWN,
}
_ASK_ID = re.compile(r"^\d+$")
_TYPE_ASK = re.compile(r"#(\d+)\s*$")
_ORDER_BY = json.dumps([{"col": "id", "dir": "asc"}], separators=(",", ":"))
"""A stable order for paging, as the official CLI asks for it."""


def remote_state(actual_status: str | None, cur_state: str | None) -> RemoteState:
    """The core's state for Vast's ``actual_status`` / ``cur_state`` pair (unloaded = terminated)."""
    if (cur_state or "").lower() == "unloaded":
        return RemoteState.TERMINATED
    return _STATES.get(actual_status.lower() if actual_status else None, RemoteState.UNKNOWN)


def ask_of(spec: LaunchSpec) -> str:
    """The Vast ask id: ``offer_ref`` when it is one, else the ``#<id>`` ending the instance type that
    ingestion writes (``1x RTX 4090 #4242``); neither is ``InvalidLaunch`` naming the missing id."""
    if spec.offer_ref is not None and _ASK_ID.match(spec.offer_ref.strip()):
        return spec.offer_ref.strip()
    tail = _TYPE_ASK.search(spec.instance_type)
    if tail is not None:
        return tail[1]
    raise InvalidLaunch(
        f"vast: the offer (ask) id is missing: offer_ref is {spec.offer_ref!r} and instance_type "
        f"{spec.instance_type!r} does not end with '#<ask id>'",
        provider=KEY,
    )


def _message(body: Any) -> str:
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "msg", "message", "detail") if body.get(k)]
        return ": ".join(parts)
    if isinstance(body, str):
        return body
    return ""


def translate(response: httpx.Response, creates: bool) -> ProvisionError | None:
    """Vast's documented error bodies (``{"success": false, "error": ..., "msg": ...}``) to kinds."""
    body = error_body(response)
    text = _message(body) or response.text[:200]
    lowered = text.lower()
    status = response.status_code
    if status >= 500:
        return None  # the helper's CreateUnknown / ProviderUnavailable ("Service Unavailable" is no answer)
    if "no_such_ask" in lowered:
        return OfferGone(f"vast: the offer is gone ({text})", provider=KEY)
    if status in (401, 403):
        return None  # the helper's AuthFailed
    if "credit" in lowered or "balance" in lowered:
        return QuotaExceeded(f"vast: {text}", provider=KEY)
    if creates and ("unavail" in lowered or "capacity" in lowered):
        return NoCapacity(f"vast: {text}", provider=KEY)
    if creates and 400 <= status < 500:
        return InvalidLaunch(f"vast: HTTP {status}: {text}", provider=KEY)
    return None


def _created_at(value: Any) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(float(value), UTC)
    return None


def to_remote(item: dict[str, Any]) -> RemoteInstance:
    """One Vast instance object (v0 show or v1 list) as a ``RemoteInstance``."""
    actual = item.get("actual_status")
    cur = item.get("cur_state")
    host = item.get("ssh_host") or item.get("public_ipaddr")
    port = item.get("ssh_port")
    rate = item.get("dph_total")
    return RemoteInstance(
        provider_id=str(item["id"]),
        key=str(item.get("label") or ""),
        state=remote_state(actual if isinstance(actual, str) else None, cur if isinstance(cur, str) else None),
        raw_state=f"{actual or 'null'}/{cur or ''}",
        address=str(host).strip() if host else None,
        ssh_port=int(port) if isinstance(port, int | str) and str(port).isdigit() else None,
        hourly_rate=float(rate) if isinstance(rate, int | float) else None,
        created_at=_created_at(item.get("start_date")),
    )


class VastProvisioner:
    """``Provisioner`` for Vast.ai over its REST API (see the module docstring)."""

    key = KEY
    capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig) -> None:
        self._http = RestClient(
            provider=KEY, config=config, default_base_url=DEFAULT_BASE_URL, translate=translate
        )

    def close(self) -> None:
        self._http.close()

    # -- create -------------------------------------------------------------------------------
    def create_body(self, spec: LaunchSpec) -> dict[str, Any]:
        """The ``PUT /asks/{id}/`` body for ``spec`` (image, label = key, disk, ssh, ports in env)."""
        if not spec.image:
            raise InvalidLaunch("vast: image is required (a Docker image for the instance)", provider=KEY)
        env: dict[str, str] = dict(spec.env)
        for port in spec.ports:
            env[f"-p {int(port)}:{int(port)}"] = "1"
        body: dict[str, Any] = {
            "client_id": "me",
            "image": spec.image,
            "label": spec.key,
            "disk": float(spec.disk_gb),
            "runtype": "ssh",
            "target_state": "running",
            "cancel_unavail": True,
            "env": env,
        }
        if spec.ssh_public_key:
            body["onstart"] = _onstart_key(spec.ssh_public_key)
        if spec.spot:
            body["price"] = float(spec.price_per_hour)
        return body

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        ask_id = ask_of(spec)
        body = self.create_body(spec)
        response = self._http.request("PUT", f"/api/v0/asks/{ask_id}/", json_body=body, creates=True)
        answer = self._http.json(response, creates=True)
        contract = answer.get("new_contract") if isinstance(answer, dict) else None
        if not isinstance(contract, int) or contract <= 0:
            # No instance id: the answer says nothing was created (a refusal in a 200 body).
            error = translate(response, True)
            raise error or InvalidLaunch(f"vast: create refused: {_message(answer) or answer!r}", provider=KEY)
        if not answer.get("success", False):
            logger.warning(
                "vast create answered success=false with a contract; adopting it",
                extra={"provider": KEY, "provider_id": contract, "key": spec.key},
            )
        provider_id = str(contract)
        if spec.ssh_public_key:
            self._attach_key(provider_id, spec.ssh_public_key)
        return RemoteInstance(provider_id=provider_id, key=spec.key, state=RemoteState.PENDING, raw_state="null/")

    def _attach_key(self, provider_id: str, public_key: str) -> None:
        """Attach the SSH key; a failure is logged, never raised (the instance exists and is ours)."""
        try:
            self._http.request("POST", f"/api/v0/instances/{provider_id}/ssh/", json_body={"ssh_key": public_key})
        except ProvisionError as exc:
            logger.warning(
                "vast: attaching the SSH key failed", extra={"provider": KEY, "provider_id": provider_id, "error": str(exc)}
            )

    # -- reads --------------------------------------------------------------------------------
    def _list(self, select_filters: dict[str, Any]) -> list[RemoteInstance]:
        """Every instance matching ``select_filters``, all pages, or ``ListingIncomplete``."""
        found: list[RemoteInstance] = []
        token = ""
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            params = {
                "select_filters": json.dumps(select_filters, separators=(",", ":")),
                "order_by": _ORDER_BY,
                "limit": str(PAGE_LIMIT),
            }
            if token:
                params["after_token"] = token
            try:
                response = self._http.request("GET", "/api/v1/instances/", params=params)
                page = self._http.json(response)
            except ProviderUnavailable as exc:
                raise ListingIncomplete(f"vast: a listing page failed: {exc}", provider=KEY) from exc
            items = page.get("instances") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise ListingIncomplete("vast: a listing page has no instances array", provider=KEY)
            found.extend(to_remote(item) for item in items if isinstance(item, dict) and "id" in item)
            token = str(page.get("next_token") or "")
            if not token:
                return found
            if token in seen:
                raise ListingIncomplete("vast: the listing repeated a page token", provider=KEY)
            seen.add(token)
        raise ListingIncomplete(f"vast: the listing did not end within {MAX_PAGES} pages", provider=KEY)

    def find(self, key: str) -> RemoteInstance | None:
        matches = live_with_key(self._list({"label": {"eq": key}}), key)
        if len(matches) > 1:
            logger.warning("vast: several instances carry one key", extra={"provider": KEY, "key": key})
        return min(matches, key=lambda r: int(r.provider_id)) if matches else None

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        return live_owned(self._list({}), prefix, require_prefix=True)

    def get(self, provider_id: str) -> RemoteInstance | None:
        response = self._http.request("GET", f"/api/v0/instances/{_id(provider_id)}/", accept=(200, 404))
        if response.status_code == 404:
            raise ProviderUnavailable(
                f"vast: instance {provider_id} answered 404, which is not Vast's proof of absence", provider=KEY
            )
        body = self._http.json(response)
        if not isinstance(body, dict) or "instances" not in body:
            raise ProviderUnavailable("vast: show instance answered without an instances field", provider=KEY)
        item = body["instances"]
        if item is None:
            return None
        if isinstance(item, list):  # some deployments answer a one-element list
            item = item[0] if item else None
            if item is None:
                return None
        if not isinstance(item, dict):
            raise ProviderUnavailable("vast: show instance answered an unreadable instance", provider=KEY)
        return to_remote({"id": provider_id, **item})

    # -- lifecycle ----------------------------------------------------------------------------
    def destroy(self, provider_id: str) -> None:
        self._http.request("DELETE", f"/api/v0/instances/{_id(provider_id)}/", accept=(200, 204, 404))

    def stop(self, provider_id: str) -> None:
        self._http.request("PUT", f"/api/v0/instances/{_id(provider_id)}/", json_body={"state": "stopped"})

    def start(self, provider_id: str) -> None:
        self._http.request("PUT", f"/api/v0/instances/{_id(provider_id)}/", json_body={"state": "running"})


def _onstart_key(public_key: str) -> str:
    """An ``onstart`` script that appends the key to root's authorized_keys (base64: no quoting issues)."""
    encoded = base64.b64encode(public_key.strip().encode()).decode()
    return (
        "mkdir -p /root/.ssh && chmod 700 /root/.ssh && "
        f"echo {encoded} | base64 -d >> /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys"
    )


def _id(provider_id: str) -> str:
    return checked_id(provider_id, _ASK_ID, provider=KEY, what="a numeric instance id")


def provisioner(config: ProviderConfig) -> Provisioner:
    """The registry's entry point."""
    return VastProvisioner(config)
