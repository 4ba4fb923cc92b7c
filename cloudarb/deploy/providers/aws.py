"""AWS EC2 provisioning (key ``aws``) through boto3's EC2 client.

- Endpoint: boto3 itself honours ``AWS_ENDPOINT_URL_EC2`` / ``AWS_ENDPOINT_URL`` (so the same path
  runs against moto in tests and AWS in production); ``ProviderConfig.base_url`` overrides both.
  Credentials: ``aws_access_key_id`` / ``aws_secret_access_key`` / ``aws_session_token`` (or the
  ``access_key_id`` spelling) from the config, else boto3's own chain (environment, profile, role).
- Create: ``RunInstances`` with ``ClientToken`` = the key (<= 64 ASCII: EC2 returns the same
  instance for a repeated token, ``IdempotentParameterMismatch`` when the parameters differ), tags at
  creation on the instance and its volumes (``Name``, ``cloudarb:key``, ``cloudarb:expires-at``, the
  line's tags), spot through ``InstanceMarketOptions`` (one-time, terminate on interruption,
  ``MaxPrice`` = the launch price). The machine image is ``spec.image`` when it is an ``ami-...``;
  a container image runs through cloud-init (Docker, the line's SSH key) on the configured AMI
  (the ``aws_ami`` setting, ``CLOUDARB_AWS_AMI``) or the region's AWS Deep Learning Base GPU AMI.
- Find / list: ``DescribeInstances`` filtered by ``tag:cloudarb:key`` (find) or ``tag-key`` plus a
  client-side prefix match (list), every page through ``NextToken``, in every configured region
  (the ``aws_regions`` setting, ``CLOUDARB_AWS_REGIONS``, comma separated, plus any region this
  process launched in and every region where the reconciler holds a row: ``also_list``) or, when none
  is configured, in every region ``DescribeRegions`` reports enabled.
- Get: the ``terminated`` state is the proof of absence. ``InvalidInstanceID.NotFound`` is *not*
  (EC2 is eventually consistent right after RunInstances and TerminateInstances), so it raises
  ``ProviderUnavailable`` and the core reads again later.
- Destroy: ``TerminateInstances`` (idempotent; a NotFound there is also only "try again").

Provider ids are region qualified, ``<region>:<instance id>``, so a read after a restart knows where
to look. Errors (AWS "Error codes for the Amazon EC2 API"): capacity codes -> NoCapacity, limit codes
-> QuotaExceeded, ``RequestLimitExceeded`` -> RateLimited, credential codes -> AuthFailed,
parameter codes -> InvalidLaunch; a connection failure, a timeout or a 5xx on create -> CreateUnknown.
botocore's own retries are off (one attempt): the core's limiter and retry policy decide.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from cloudarb.deploy.errors import (
    AuthFailed,
    CreateUnknown,
    InvalidLaunch,
    ListingIncomplete,
    NoCapacity,
    ProviderUnavailable,
    ProvisionError,
    QuotaExceeded,
    RateLimited,
)
from cloudarb.deploy.providers._cloudinit import user_data
from cloudarb.deploy.providers.base import (
    Capabilities,
    LaunchSpec,
    ProviderConfig,
    Provisioner,
    RemoteInstance,
    RemoteState,
)

KEY = "aws"
KEY_TAG = "cloudarb:key"
EXPIRES_TAG = "cloudarb:expires-at"
LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]

CAPABILITIES = Capabilities(
    spot=True,
    stop_start=True,
    mark="tags",
    idempotency_token=True,
    list_filter=True,
    billing_granularity_s=1,
    billing_minimum_s=60,
    requests_per_s=5.0,
    burst=10,
    listing_lag_s=60.0,
    max_key_length=64,
    stop_spot=False,
    stopped_billed=False,
    minimum_per_run=True,
)
"""Stop/start: on-demand instances only (CloudArb's spot instances come from one-time spot requests,
which EC2 can only terminate; only persistent requests stop). A stopped instance bills no compute (its
EBS volumes do: not metered here), and each start bills at least one minute again."""

NO_CAPACITY = frozenset({"InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientCapacity",
                         "Unsupported", "UnfulfillableCapacity", "SpotMaxPriceTooLow"})
QUOTA = frozenset({"InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded"})
THROTTLED = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})
AUTH = frozenset({"AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch",
                  "OptInRequired", "Blocked", "PendingVerification", "ExpiredToken", "RequestExpired"})
INVALID = frozenset({"IdempotentParameterMismatch", "InvalidParameterValue", "InvalidParameterCombination",
                     "InvalidParameter", "MissingParameter", "InvalidAMIID.NotFound", "InvalidAMIID.Malformed",
                     "InvalidInstanceType", "InvalidKeyPair.NotFound", "InvalidSubnetID.NotFound",
                     "InvalidGroup.NotFound", "InvalidUserData.Malformed"})
NOT_FOUND = "InvalidInstanceID.NotFound"
DLAMI_PARAMETER = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"

_STATES = {
    "pending": RemoteState.PENDING,
    "running": RemoteState.RUNNING,
    "stopping": RemoteState.STOPPED,
    "stopped": RemoteState.STOPPED,
    "shutting-down": RemoteState.TERMINATING,
    "terminated": RemoteState.TERMINATED,
}


def split_provider_id(provider_id: str, default_region: str) -> tuple[str, str]:
    """(region, instance id) from ``<region>:<instance id>`` (a bare instance id: the default region)."""
    region, sep, instance_id = provider_id.rpartition(":")
    return (region, instance_id) if sep else (default_region, provider_id)


def translate(exc: Exception, *, creates: bool) -> ProvisionError:
    """One EC2/botocore failure as the deploy core's error kind."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = f"aws: {code}: {error.get('Message', '')}".strip()
        if code in NO_CAPACITY:
            return NoCapacity(message, provider=KEY)
        if code in QUOTA:
            return QuotaExceeded(message, provider=KEY)
        if code in THROTTLED:
            return RateLimited(message, provider=KEY)
        if code in AUTH:
            return AuthFailed(message, provider=KEY)
        if code in INVALID or (creates and 400 <= status < 500 and code != NOT_FOUND):
            return InvalidLaunch(message, provider=KEY) if creates else ProvisionError(message, provider=KEY)
        if creates:
            return CreateUnknown(message + " (the instance may exist)", provider=KEY)
        return ProviderUnavailable(message, provider=KEY)
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
        return AuthFailed(f"aws: {name}", provider=KEY)
    if creates:
        return CreateUnknown(f"aws: {name} on RunInstances (the instance may exist)", provider=KEY)
    return ProviderUnavailable(f"aws: {name}", provider=KEY)


_ZONE_ID = re.compile(r"^[a-z]{2,6}\d+-az\d+$")


class AwsProvisioner:
    """EC2 instances marked by the ``cloudarb:key`` tag, created with the key as ClientToken."""

    key = KEY
    capabilities = CAPABILITIES

    def __init__(self, config: ProviderConfig, *, page_size: int = 100) -> None:
        self._config = config
        self._page_size = page_size
        creds = config.credentials
        self._session = boto3.session.Session(
            aws_access_key_id=creds.get("aws_access_key_id") or creds.get("access_key_id") or None,
            aws_secret_access_key=creds.get("aws_secret_access_key") or creds.get("secret_access_key") or None,
            aws_session_token=creds.get("aws_session_token") or creds.get("session_token") or None,
        )
        configured = creds.get("regions") or ""  # the aws_regions setting (CLOUDARB_AWS_REGIONS)
        self.regions = [r.strip() for r in configured.split(",") if r.strip()]
        """Regions listed by find/list_owned; empty = every region the account has enabled."""
        self.home = (self.regions[0] if self.regions else None) or os.environ.get("AWS_REGION") \
            or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._launched: list[str] = []
        self._all_regions: list[str] | None = None
        self._boto = BotoConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=config.timeout_s,
            read_timeout=config.timeout_s,
        )
        self._clients: dict[str, Any] = {}

    def _client(self, region: str) -> Any:
        if region not in self._clients:
            self._clients[region] = self._session.client(
                "ec2", region_name=region, endpoint_url=self._config.base_url or None, config=self._boto
            )
        return self._clients[region]

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        if not spec.key.isascii() or len(spec.key) > CAPABILITIES.max_key_length:
            raise InvalidLaunch("aws: the key must be ASCII and at most 64 characters (ClientToken)", provider=KEY)
        region = spec.region or self.home
        if region not in self._launched:
            self._launched.append(region)
        request: dict[str, Any] = {
            "ImageId": self._image(spec),
            "InstanceType": spec.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": spec.key,
            "TagSpecifications": [
                {"ResourceType": kind, "Tags": self._tags(spec)} for kind in ("instance", "volume")
            ],
        }
        data = user_data(spec, ssh=True)
        if data is not None:
            request["UserData"] = data
        if spec.zone:  # offers name a zone by its id (use1-az4, the same in every account) or its name
            field = "AvailabilityZoneId" if _ZONE_ID.match(spec.zone) else "AvailabilityZone"
            request["Placement"] = {field: spec.zone}
        if spec.spot:
            request["InstanceMarketOptions"] = {
                "MarketType": "spot",
                "SpotOptions": {
                    "MaxPrice": f"{spec.price_per_hour:.4f}",
                    "SpotInstanceType": "one-time",
                    "InstanceInterruptionBehavior": "terminate",
                },
            }
        try:
            answer = self._client(region).run_instances(**request)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, creates=True) from exc
        instances = answer.get("Instances") or []
        if len(instances) != 1:
            raise CreateUnknown(f"aws: RunInstances answered {len(instances)} instances", provider=KEY)
        return self._instance(region, instances[0])

    def find(self, key: str) -> RemoteInstance | None:
        filters = [{"Name": f"tag:{KEY_TAG}", "Values": [key]}, {"Name": "instance-state-name", "Values": LIVE_STATES}]
        for region in self._listed_regions():
            for instance in self._describe(region, filters=filters):
                if instance.key == key and instance.state is not RemoteState.TERMINATED:
                    return instance
        return None

    def get(self, provider_id: str) -> RemoteInstance | None:
        region, instance_id = split_provider_id(provider_id, self.home)
        try:
            answer = self._client(region).describe_instances(InstanceIds=[instance_id])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == NOT_FOUND:
                raise ProviderUnavailable(
                    f"aws: {instance_id} not found (not proof of absence: EC2 is eventually consistent)",
                    provider=KEY,
                ) from exc
            raise translate(exc, creates=False) from exc
        except BotoCoreError as exc:
            raise translate(exc, creates=False) from exc
        for reservation in answer.get("Reservations") or []:
            for item in reservation.get("Instances") or []:
                if item.get("InstanceId") == instance_id:
                    return self._instance(region, item)
        raise ProviderUnavailable(f"aws: {instance_id} missing from its own description", provider=KEY)

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        filters = [{"Name": "tag-key", "Values": [KEY_TAG]}, {"Name": "instance-state-name", "Values": LIVE_STATES}]
        owned: list[RemoteInstance] = []
        for region in self._listed_regions():
            owned.extend(i for i in self._describe(region, filters=filters) if i.key.startswith(prefix))
        return [i for i in owned if i.state is not RemoteState.TERMINATED]

    def destroy(self, provider_id: str) -> None:
        region, instance_id = split_provider_id(provider_id, self.home)
        self._call(region, "terminate_instances", InstanceIds=[instance_id])

    def stop(self, provider_id: str) -> None:
        region, instance_id = split_provider_id(provider_id, self.home)
        self._call(region, "stop_instances", InstanceIds=[instance_id])

    def start(self, provider_id: str) -> None:
        region, instance_id = split_provider_id(provider_id, self.home)
        self._call(region, "start_instances", InstanceIds=[instance_id])

    # -- helpers -----------------------------------------------------------------------------------
    def _call(self, region: str, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client(region), operation)(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == NOT_FOUND:
                raise ProviderUnavailable(f"aws: {operation}: instance not found yet", provider=KEY) from exc
            raise translate(exc, creates=False) from exc
        except BotoCoreError as exc:
            raise translate(exc, creates=False) from exc

    def also_list(self, regions: Iterable[str]) -> None:
        """Regions to list besides the configured ones: where our rows are (nothing we launched hides)."""
        for region in regions:
            if region and region not in self._launched:
                self._launched.append(region)

    def _listed_regions(self) -> list[str]:
        """The configured regions (plus any this process launched in), else every enabled region
        (``DescribeRegions``, read once): an instance in a region nobody listed would never be
        reconciled."""
        if self.regions:
            return self.regions + [r for r in self._launched if r not in self.regions]
        if self._all_regions is None:
            answer = self._call(self.home, "describe_regions")
            names = [str(r["RegionName"]) for r in answer.get("Regions") or [] if r.get("RegionName")]
            if not names:
                raise ListingIncomplete("aws: DescribeRegions answered no region", provider=KEY)
            self._all_regions = sorted(names)
        return self._all_regions

    def _describe(self, region: str, *, filters: list[dict[str, Any]]) -> Iterator[RemoteInstance]:
        """Every page of a filtered DescribeInstances (an error on any page aborts the listing)."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": max(5, self._page_size)}
            if token:
                kwargs["NextToken"] = token
            try:
                answer = self._call(region, "describe_instances", **kwargs)
            except (ProviderUnavailable, RateLimited) as exc:
                if token is None:
                    raise
                raise ListingIncomplete(f"aws: a later page of the listing failed ({exc})", provider=KEY) from exc
            for reservation in answer.get("Reservations") or []:
                for item in reservation.get("Instances") or []:
                    yield self._instance(region, item)
            token = answer.get("NextToken")
            if not token:
                return

    def _image(self, spec: LaunchSpec) -> str:
        """``spec.image`` when it is an AMI; else the configured AMI (``ami`` setting or
        ``CLOUDARB_AWS_AMI``, the ``aws_ami`` setting); else the region's current AWS Deep Learning Base GPU AMI from its
        public SSM parameter (as AWS documents for finding DLAMI ids)."""
        if spec.image.startswith("ami-"):
            return spec.image
        ami = self._config.credentials.get("ami", "")  # the aws_ami setting (CLOUDARB_AWS_AMI)
        if ami:
            return ami
        region = spec.region or self.home
        try:
            ssm = self._session.client("ssm", region_name=region, endpoint_url=self._config.base_url or None,
                                       config=self._boto)
            value = ssm.get_parameter(Name=DLAMI_PARAMETER)["Parameter"]["Value"]
        except (ClientError, BotoCoreError, KeyError) as exc:
            raise InvalidLaunch(
                f"aws: no machine image for {region}: give an ami-... image or set CLOUDARB_AWS_AMI "
                f"({DLAMI_PARAMETER} could not be read: {type(exc).__name__})",
                provider=KEY,
            ) from exc
        return str(value)

    @staticmethod
    def _tags(spec: LaunchSpec) -> list[dict[str, str]]:
        tags = {str(k)[:128]: str(v)[:256] for k, v in spec.tags.items() if not str(k).lower().startswith("aws:")}
        tags.update({"Name": spec.key, KEY_TAG: spec.key, EXPIRES_TAG: spec.expires_at.isoformat()})
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    @staticmethod
    def _instance(region: str, item: dict[str, Any]) -> RemoteInstance:
        tags = {t.get("Key"): t.get("Value") for t in item.get("Tags") or []}
        state = str((item.get("State") or {}).get("Name", ""))
        return RemoteInstance(
            provider_id=f"{region}:{item.get('InstanceId', '')}",
            key=str(tags.get(KEY_TAG) or ""),
            state=_STATES.get(state, RemoteState.UNKNOWN),
            raw_state=state,
            address=item.get("PublicIpAddress") or item.get("PrivateIpAddress") or None,
            ssh_port=22 if item.get("PublicIpAddress") or item.get("PrivateIpAddress") else None,
            created_at=item.get("LaunchTime"),
        )


def provisioner(config: ProviderConfig) -> Provisioner:
    """The registry's entry point for key ``aws``."""
    return AwsProvisioner(config)
