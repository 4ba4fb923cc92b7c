"""Lambda Cloud provisioning (key ``lambda``), written against the public API v1 (OpenAPI 1.8.3).

``https://cloud.lambda.ai/api/v1`` with ``Authorization: Bearer <API key>`` (Basic is also
documented). Success bodies are ``{"data": ...}``, errors ``{"error": {"code", "message",
"suggestion"}}``; only ``code`` is read. The calls used:

- ``POST /instance-operations/launch`` ``{region_name, instance_type_name, ssh_key_names: [one],
  name, tags: [{key, value}], image?, user_data?}`` -> ``{"data": {"instance_ids": [...]}}``.
  400 ``instance-operations/launch/insufficient-capacity`` -> NoCapacity, ``global/quota-exceeded``
  -> QuotaExceeded, ``global/invalid-parameters`` (and 404 ``global/object-does-not-exist``, a
  launch resource not found) -> InvalidLaunch; 401 ``global/invalid-api-key`` and 403
  ``global/account-inactive`` / ``invalid-billing-address`` -> AuthFailed.
- ``POST /instance-operations/terminate`` ``{"instance_ids": [id]}``; 404 = already gone.
- ``GET /instances`` (not paged, no tag filter: owned instances are picked client side by the
  ``cloudarb:key`` tag, or by the name when a tag is missing) and ``GET /instances/{id}``, whose 404
  ``global/object-does-not-exist`` is the proof of absence.
- Images: ``family:<name>``, ``id:<id>`` or a bare name pick Lambda's machine image (default: the
  latest Lambda Stack); a container reference runs on it through cloud-init ``user_data``.
- ``GET /ssh-keys`` and ``POST /ssh-keys {name, public_key}``: launch takes exactly one key *name*,
  so a line's public key is registered once under a name derived from its fingerprint.

Lambda has no idempotency token, no stop/start and no spot; launches are limited to one per 12 s
and the API to about one request per second; billing runs in one-minute increments.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx

from cloudarb.deploy.errors import (
    AuthFailed,
    CreateUnknown,
    InvalidLaunch,
    NoCapacity,
    ProviderUnavailable,
    ProvisionError,
    QuotaExceeded,
)
from cloudarb.deploy.providers._cloudinit import is_container_image, user_data
from cloudarb.deploy.providers._common import live_owned, live_with_key
from cloudarb.deploy.providers._http import RestClient, error_body
from cloudarb.deploy.providers.base import (
    Capabilities,
    LaunchSpec,
    ProviderConfig,
    Provisioner,
    RemoteInstance,
    RemoteState,
)

KEY = "lambda"
DEFAULT_BASE_URL = "https://cloud.lambda.ai/api/v1"
KEY_TAG = "cloudarb:key"
EXPIRES_TAG = "cloudarb:expires-at"

CAPABILITIES = Capabilities(
    spot=False,
    stop_start=False,
    mark="tags",
    idempotency_token=False,
    list_filter=False,
    billing_granularity_s=60,
    billing_minimum_s=60,
    requests_per_s=1.0,
    burst=1,
    launch_interval_s=12.0,
    listing_lag_s=30.0,
    max_key_length=64,
    reports_rate=True,
)

_STATES = {
    "booting": RemoteState.PENDING,
    "active": RemoteState.RUNNING,
    "unhealthy": RemoteState.UNKNOWN,
    "terminating": RemoteState.TERMINATING,
    "terminated": RemoteState.TERMINATED,
    "preempted": RemoteState.TERMINATED,
}
_GONE = "global/object-does-not-exist"
_TAG_KEY = re.compile(r"^[a-z][a-z0-9-:]+$")


def _code(response: httpx.Response) -> str:
    body = error_body(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code", ""))
    return ""


def _translate(response: httpx.Response, creates: bool) -> ProvisionError | None:
    code = _code(response)
    message = f"lambda: {code or 'HTTP ' + str(response.status_code)}"
    if code == "instance-operations/launch/insufficient-capacity":
        return NoCapacity(message, provider=KEY)
    if code == "global/quota-exceeded":
        return QuotaExceeded(message, provider=KEY)
    if code in ("global/invalid-api-key", "global/account-inactive") or code.endswith("invalid-billing-address"):
        return AuthFailed(message, provider=KEY)
    if code == "global/invalid-parameters" or (creates and code == _GONE):
        return InvalidLaunch(message, provider=KEY) if creates else ProvisionError(message, provider=KEY)
    if code.startswith("provider/"):
        return (CreateUnknown if creates else ProviderUnavailable)(message, provider=KEY)
    return None


def tag_key(name: str) -> str:
    """A tag key Lambda accepts (``^[a-z][a-z0-9-:]+$``, at most 55 characters)."""
    key = re.sub(r"[^a-z0-9:-]", "-", name.lower())
    if not _TAG_KEY.match(key):
        key = "x-" + key
    return key[:55]


class LambdaProvisioner:
    """Lambda Cloud instances marked by the ``cloudarb:key`` tag and the instance name."""

    key = KEY
    capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._rest = RestClient(
            provider=KEY, config=config, default_base_url=DEFAULT_BASE_URL, translate=_translate
        )
        self._ssh_key_names: set[str] = set()

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        if len(spec.key) > CAPABILITIES.max_key_length:
            raise InvalidLaunch(f"lambda: key longer than {CAPABILITIES.max_key_length}", provider=KEY)
        body: dict[str, Any] = {
            "region_name": spec.region,
            "instance_type_name": spec.instance_type,
            "ssh_key_names": [self._ssh_key_name(spec)],
            "name": spec.key,
            "tags": self._tags(spec),
        }
        data = user_data(spec, ssh=False)  # the key itself goes through Lambda's key registry
        if data is not None:
            body["user_data"] = data
        if spec.image and not is_container_image(spec.image):
            kind, _, value = spec.image.partition(":")
            body["image"] = {"id": value} if kind == "id" and value else {"family": spec.image.removeprefix("family:")}
        response = self._rest.request("POST", "/instance-operations/launch", json_body=body, creates=True,
                                      accept=(200,))
        launched = self._rest.json(response, creates=True).get("data") or {}
        ids = launched.get("instance_ids") or []
        if len(ids) != 1:
            raise CreateUnknown(f"lambda: launch answered {len(ids)} instance ids", provider=KEY)
        return RemoteInstance(provider_id=str(ids[0]), key=spec.key, state=RemoteState.PENDING,
                              raw_state="booting")

    def find(self, key: str) -> RemoteInstance | None:
        return next(iter(live_with_key(self._list(), key)), None)

    def get(self, provider_id: str) -> RemoteInstance | None:
        response = self._rest.request("GET", f"/instances/{provider_id}", accept=(200, 404))
        if response.status_code == 404:
            if _code(response) == _GONE:
                return None
            raise ProviderUnavailable("lambda: 404 without the documented not-found code", provider=KEY)
        return self._instance(self._rest.json(response).get("data") or {})

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        return live_owned(self._list(), prefix)

    def destroy(self, provider_id: str) -> None:
        response = self._rest.request(
            "POST", "/instance-operations/terminate", json_body={"instance_ids": [provider_id]}, accept=(200, 404)
        )
        if response.status_code == 404 and _code(response) != _GONE:
            raise ProviderUnavailable("lambda: 404 without the documented not-found code", provider=KEY)

    def stop(self, provider_id: str) -> None:
        raise InvalidLaunch("lambda: instances cannot be stopped, only terminated", provider=KEY)

    def start(self, provider_id: str) -> None:
        raise InvalidLaunch("lambda: instances cannot be stopped, only terminated", provider=KEY)

    # -- helpers -----------------------------------------------------------------------------------
    def _list(self) -> list[RemoteInstance]:
        response = self._rest.request("GET", "/instances", accept=(200,))
        data = self._rest.json(response).get("data")
        if not isinstance(data, list):
            raise ProviderUnavailable("lambda: instance list without data", provider=KEY)
        return [self._instance(item) for item in data]

    def _instance(self, item: dict[str, Any]) -> RemoteInstance:
        tags = {t.get("key"): t.get("value") for t in item.get("tags") or [] if isinstance(t, dict)}
        status = str(item.get("status", ""))
        itype = item.get("instance_type") or {}
        cents = itype.get("price_cents_per_hour") if isinstance(itype, dict) else None
        return RemoteInstance(
            provider_id=str(item.get("id", "")),
            key=str(tags.get(KEY_TAG) or item.get("name") or ""),
            state=_STATES.get(status, RemoteState.UNKNOWN),
            raw_state=status,
            address=item.get("ip") or None,
            ssh_port=22 if item.get("ip") else None,
            hourly_rate=cents / 100.0 if isinstance(cents, int | float) else None,
        )

    def _tags(self, spec: LaunchSpec) -> list[dict[str, str]]:
        tags = {tag_key(k): str(v)[:128] for k, v in spec.tags.items()}
        tags[KEY_TAG] = spec.key
        tags[EXPIRES_TAG] = spec.expires_at.isoformat()
        return [{"key": k, "value": v} for k, v in tags.items()]

    def _ssh_key_name(self, spec: LaunchSpec) -> str:
        """The name of a registered key holding ``spec.ssh_public_key`` (registered when missing)."""
        public = (spec.ssh_public_key or "").strip()
        if not public:
            configured = self._config.credentials.get("ssh_key_name", "")
            if not configured:
                raise InvalidLaunch("lambda: a launch needs an SSH public key (ssh_public_key)", provider=KEY)
            return configured
        name = "cloudarb-" + hashlib.sha256(public.encode()).hexdigest()[:20]
        if name in self._ssh_key_names:
            return name
        if name not in self._registered_keys():
            try:
                self._rest.request("POST", "/ssh-keys", json_body={"name": name, "public_key": public},
                                   accept=(200,))
            except ProvisionError:
                if name not in self._registered_keys():  # not another worker registering it first
                    raise
        self._ssh_key_names.add(name)
        return name

    def _registered_keys(self) -> set[str]:
        response = self._rest.request("GET", "/ssh-keys", accept=(200,))
        return {str(k.get("name")) for k in self._rest.json(response).get("data") or [] if isinstance(k, dict)}


def provisioner(config: ProviderConfig) -> Provisioner:
    """The registry's entry point for key ``lambda``."""
    return LambdaProvisioner(config)
