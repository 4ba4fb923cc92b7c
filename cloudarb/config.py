"""Settings, read once from ``CLOUDARB_*`` environment variables (and an optional .env file)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_HOME = Path.home() / ".cloudarb"


class RuntimeSettings(BaseModel):
    """Where CloudArb keeps its state and how it runs: storage, the Redis of production mode, logging."""

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_HOME / 'cloudarb.db'}",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL; unset = embedded mode (in-process jobs and events)."
    )
    queue_name: str = "cloudarb"
    data_dir: Path = DEFAULT_HOME
    seed_snapshot: bool = Field(default=True, description="Load the bundled price snapshot on first run.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ApiSettings(BaseModel):
    """The API: tokens, request limits, how clients reach it."""

    secret_key: SecretStr | None = Field(
        default=None, description="JWT signing key; unset = a random key kept in the data directory."
    )
    access_token_minutes: Annotated[int, Field(ge=1)] = 15
    refresh_token_days: Annotated[int, Field(ge=1)] = 7
    rate_limit_per_minute: Annotated[int, Field(ge=1)] = 600
    max_body_bytes: Annotated[int, Field(ge=1024)] = 2_000_000
    public_url: str = Field(
        default="", description="CLOUDARB_PUBLIC_URL: the API's base URL as clients reach it (e.g. "
        "https://cloudarb.example.com); WebSocket URLs are built from it, never from the request's Host "
        "header. Unset: answers carry the WebSocket path alone (/ws/jobs/<id>), relative to the API.")
    metrics_token: SecretStr | None = Field(
        default=None, description="CLOUDARB_METRICS_TOKEN: bearer token of the monitoring system for "
        "GET /metrics (an admin's key or token works too; nobody else reads it).")
    login_attempts_per_minute: Annotated[int, Field(
        ge=1, description="CLOUDARB_LOGIN_ATTEMPTS_PER_MINUTE: login attempts per account per minute (429 after).")] = 10
    login_attempts_per_address_per_minute: Annotated[int, Field(
        ge=1, description="CLOUDARB_LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE: login attempts per client address per "
        "minute, whatever the account (429 after).")] = 60
    dashboard_dir: Path | None = Field(
        default=None, description="CLOUDARB_DASHBOARD_DIR: the built dashboard (npm run build -> frontend/dist) "
        "the API serves at / (its API also under /api); unset: frontend/dist beside the package, when built.")
    serve_dashboard: bool = Field(default=True, description="CLOUDARB_SERVE_DASHBOARD: false serves the API alone.")


class JobsSettings(BaseModel):
    """Jobs and the scheduler: timeouts, retries, heartbeats, the reaper's bounds, solver time."""

    job_timeout_s: Annotated[int, Field(ge=1)] = 900
    job_max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    job_heartbeat_s: Annotated[float, Field(gt=0)] = 5.0
    job_stale_after_s: Annotated[float, Field(gt=0)] = 60.0
    job_lost_after_s: Annotated[float, Field(
        gt=0, description="CLOUDARB_JOB_LOST_AFTER_S: a job queued this long that its queue does not hold "
        "(Redis restarted empty, broker down at submit, RQ failed it before it started) is queued again.",
    )] = 30.0
    job_queued_max_s: Annotated[float, Field(
        gt=0, description="CLOUDARB_JOB_QUEUED_MAX_S: a job still queued this long after it was queued "
        "fails with the reason, so nothing accepted waits forever.",
    )] = 6 * 3600.0
    embedded_workers: Annotated[int, Field(ge=1, le=32)] = 2
    solve_time_limit_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    scheduler_tick_s: Annotated[float, Field(gt=0)] = 5.0
    keep_current_threshold_pct: Annotated[float, Field(ge=0, le=100)] = 5.0


class IngestSettings(BaseModel):
    """Pricing ingestion (cloudarb.ingest) and how offers are read. Dict settings are JSON in the
    environment, e.g. CLOUDARB_INGEST_INTERVAL_S='{"lambda": 20}'."""

    ingest_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Provider keys refreshed on a schedule (e.g. lambda,runpod,vast); empty = none.",
    )
    ingest_interval_s: dict[str, float] = Field(
        default_factory=dict, description="Per-provider refresh interval overrides (seconds)."
    )
    ingest_jitter_pct: Annotated[float, Field(ge=0, le=50)] = 10.0
    ingest_backoff_max_s: Annotated[float, Field(gt=0)] = 1800.0
    ingest_missing_credentials_recheck_s: Annotated[float, Field(gt=0)] = 600.0
    ingest_base_urls: dict[str, str] = Field(
        default_factory=dict, description="Per-provider API base URL overrides (proxies, tests)."
    )
    ingest_timeout_s: Annotated[float, Field(gt=0)] = 20.0
    ingest_retry_attempts: Annotated[int, Field(ge=1, le=10)] = 2
    offer_max_age_s: dict[str, float] = Field(
        default_factory=dict,
        description="Per-provider age beyond which /offers?fresh=true drops an offer; default 3x its interval.",
    )
    offer_default_available_instances: Annotated[int, Field(ge=0)] | None = Field(
        default=16,
        description="Instances the solver assumes a cloud can rent of an offer that states no capacity "
        "(unknown is not unlimited); marketplace listings and own hosts are one machine. Empty = unlimited.",
    )
    offer_capacity_kinds: dict[str, Literal["pool", "listing"]] = Field(
        default_factory=dict,
        description="Per-provider override of what an offer is: 'pool' (many instances) or 'listing' "
        "(one machine), e.g. '{\"mymarket\": \"listing\"}' (cloudarb/optimize/capacity.py has the defaults).",
    )
    price_stale_after_s: Annotated[float, Field(gt=0)] = Field(
        default=7 * 86_400.0,
        description="API and CLI say plainly that prices are stale when the newest is older than this.",
    )
    price_events_retention_days: Annotated[int, Field(ge=1)] = 7


class CredentialsSettings(BaseModel):
    """Provider credentials, one field per secret; ``PROVIDER_CREDENTIALS`` says which belong to
    which provider key."""

    lambda_api_key: SecretStr | None = None
    runpod_api_key: SecretStr | None = None
    vast_api_key: SecretStr | None = None
    tensordock_api_key: SecretStr | None = None
    gcp_api_key: SecretStr | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None


class ForecastsSettings(BaseModel):
    """Forecasts (cloudarb.forecasts): price scenarios, demand bounds, scheduled retraining."""

    demand_max_gap_hours: Annotated[int, Field(
        ge=0, le=24 * 14, description="CLOUDARB_DEMAND_MAX_GAP_HOURS: a demand forecast whose usage data ended "
        "longer ago than this is not applied to a policy run (the gap is not read as zero demand).")] = 6
    forecast_retrain_interval_s: Annotated[float, Field(ge=0)] = Field(
        default=86_400.0, description="Scheduled full retraining (champion/challenger) every N seconds; 0 = never."
    )
    forecast_refresh_interval_s: Annotated[float, Field(ge=0)] = Field(
        default=3_600.0, description="Scheduled incremental forecast refresh every N seconds; 0 = never."
    )
    forecast_horizon_hours: Annotated[int, Field(ge=1, le=24 * 14)] = 24
    forecast_history_hours: Annotated[int, Field(ge=24, le=24 * 400)] = 24 * 28
    forecast_min_points: Annotated[int, Field(ge=2)] = 24
    forecast_scenarios: Annotated[int, Field(ge=10, le=1000)] = 50
    forecast_quantiles: list[Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=lambda: [0.05, 0.1, 0.5, 0.9, 0.95], description="Quantile levels stored per forecast."
    )
    forecast_workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=2, description="Processes fitting series in parallel (size for the worker's cores)."
    )
    forecast_max_series: Annotated[int, Field(ge=1)] = 5_000
    forecast_price_candidates: list[str] = Field(
        default_factory=lambda: ["lag_ridge"],
        description="Models competing with the baselines on price series (ets is ~20x slower per series).",
    )
    forecast_demand_candidates: list[str] = Field(
        default_factory=lambda: ["last_state", "state_arrivals", "day_profile"],
        description="Models competing with the baselines on demand series (last_state and state_arrivals "
                    "take part only for workloads whose usage reports gpus_at_end / gpus_started; "
                    "day_profile uses them as its base level when present). Add ets for trending usage: "
                    "it never won on the Philly trace and makes a demand forecast about 15x slower.",
    )
    forecast_holidays: str | None = Field(
        default=None, description="Public-holiday calendar whose days count as days off in demand forecasts "
                                  "(holidays-package codes: 'US', 'US-WA', 'DE-BY'...); unset = weekends only.",
    )
    forecast_timezone: str = Field(
        default="UTC", description="Time zone in which demand forecasts tell workdays from weekends and holidays.",
    )
    forecast_keep_per_series: Annotated[int, Field(ge=1)] = 5
    forecast_max_age_s: Annotated[float, Field(gt=0)] = Field(
        default=7 * 86_400.0, description="Stored forecasts older than this are not fed to the optimizer."
    )
    forecast_price_periods: bool = Field(
        default=False, description="Also feed per-period forecast prices (turns solves multi-period: bigger)."
    )
    forecast_spot_advisor_path: Path | None = Field(
        default=None, description="AWS spot-advisor CSV for the interruption-risk model; unset = the bundled copy."
    )
    forecast_spot_traces_dir: Path | None = Field(
        default=None,
        description="Folder of spot preemption/availability traces (an index.csv and JSON traces, the SkyPilot "
        "spot-traces layout) that calibrate the risk model's rates to observed interruptions; unset = the "
        "advisor's buckets alone (they run 120-1,490x below what traced p3.2xlarge spot instances saw).",
    )
    forecast_risk_model: bool = Field(default=True, description="Estimate spot interruption rates with the risk model.")
    forecast_fleet_window_days: Annotated[float, Field(ge=0, le=365)] = Field(
        default=30.0, description="Days of our own fleet's spot interruptions and launch refusals that update the "
        "risk estimates (0 = ignore the fleet).")
    forecast_performance_table: bool = Field(
        default=True, description="Give workloads without a performance table the fitted default one."
    )


class DeploySettings(BaseModel):
    """The deploy stage (cloudarb.deploy): ownership prefix, safety windows, lifetimes, the reconciler."""

    deploy_install_id: str | None = Field(
        default=None, pattern=r"^[a-z0-9]{4,16}$",
        description="CLOUDARB_DEPLOY_INSTALL_ID: this installation's id in every provider-side mark "
        "(cloudarb-<id>-...); unset = generated once and kept in the database.")
    deploy_default_lifetime_h: Annotated[float, Field(gt=0, le=24 * 30)] = 4.0
    deploy_max_lifetime_h: Annotated[float, Field(gt=0, le=24 * 30, description=(
        "CLOUDARB_DEPLOY_MAX_LIFETIME_H: hard maximum lifetime of a deployment unless it was created with "
        "the explicit override (then deploy_override_max_lifetime_h)."))] = 12.0
    deploy_override_max_lifetime_h: Annotated[float, Field(gt=0, le=24 * 365)] = 24 * 7.0
    deploy_orphan_grace_s: Annotated[float, Field(ge=0, description=(
        "An instance with our prefix and no live row is destroyed this long after it was first seen."))] = 300.0
    deploy_ghost_grace_s: Annotated[float, Field(ge=0, description=(
        "A live row whose instance is missing from listings is ended (after a fresh read proves absence) "
        "once it has been missing this long past the provider's listing lag."))] = 300.0
    deploy_reconcile_interval_s: Annotated[float, Field(gt=0)] = 120.0
    deploy_leaked_after: Annotated[int, Field(ge=1, le=100, description=(
        "Failed destroy attempts after which an instance is 'leaked' (alerted; retried forever)."))] = 5
    deploy_destroy_backoff_max_s: Annotated[float, Field(gt=0)] = 900.0
    deploy_block_offer_s: Annotated[float, Field(ge=0, description=(
        "How long an offer that answered no capacity or quota is left out of failover re-solves."))] = 1800.0
    deploy_failover_attempts: Annotated[int, Field(ge=1, le=20)] = 4
    deploy_boot_timeout_s: Annotated[float, Field(gt=0)] = 900.0
    deploy_claim_timeout_s: Annotated[float, Field(ge=0, description=(
        "CLOUDARB_DEPLOY_CLAIM_TIMEOUT_S: an instance left 'creating' by another worker is resumed (looked for, "
        "then created) only after this long: its create call may still be in flight."))] = 120.0
    deploy_reachability_check: bool = Field(
        default=True, description="CLOUDARB_DEPLOY_REACHABILITY_CHECK: an instance counts as running only once "
        "its SSH port answers the control plane (turn off where the control plane cannot reach instances).")
    deploy_boot_poll_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    deploy_queue_timeout_s: Annotated[float, Field(ge=0, description=(
        "CLOUDARB_DEPLOY_QUEUE_TIMEOUT_S: how long a placement queued at a provider that queues (local nodes) is "
        "waited for before the deploy job stops following it; 0 = no limit (it is not billed while queued)."))] = 0.0
    deploy_rate_tolerance: Annotated[float, Field(ge=0, le=1, description=(
        "CLOUDARB_DEPLOY_RATE_TOLERANCE: a provider-reported hourly rate differing from the launch price by more "
        "than this share raises a rate_mismatch alert (billing stays at the launch price)."))] = 0.02
    deploy_runpod_api: Literal["v1", "v2"] = Field(default="v2", description=(
        "CLOUDARB_DEPLOY_RUNPOD_API: RunPod's REST API version (v1 is retired on 2026-11-15; v2 has no "
        "interruptible pods)."))
    aws_regions: str = Field(default="", description=(
        "CLOUDARB_AWS_REGIONS: comma-separated EC2 regions the reconciler lists (besides every region holding a "
        "live instance row)."))
    aws_ami: str = Field(default="", description="CLOUDARB_AWS_AMI: the AMI to launch (else the region's AWS Deep "
                         "Learning Base GPU AMI).")
    deploy_base_url_aws: str | None = None
    deploy_base_url_lambda: str | None = None
    deploy_base_url_runpod: str | None = None
    deploy_base_url_vast: str | None = None
    deploy_base_url_tensordock: str | None = None
    deploy_base_url_local: str | None = None


class NodesSettings(BaseModel):
    """The team's own GPU hosts (cloudarb.nodes): agents' heartbeats, join tokens, the placement queue."""

    node_heartbeat_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=15.0, description="CLOUDARB_NODE_HEARTBEAT_INTERVAL_S: how often agents send a heartbeat.")
    node_missed_heartbeats: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3, description="CLOUDARB_NODE_MISSED_HEARTBEATS: a node silent for this many intervals is "
        "unhealthy: its offers leave the market and its placements are flagged.")
    node_join_token_ttl_s: Annotated[float, Field(gt=0, le=30 * 86400)] = Field(
        default=3600.0, description="Default lifetime of a join token (one-time, admin-issued).")
    node_custom_images: bool = Field(
        default=True, description="Placements may name any image, not only a template's.")
    node_mig_offers: bool = Field(
        default=True, description="MIG devices of MIG-enabled GPUs become offers of their own.")
    node_default_lifetime_s: Annotated[float, Field(gt=0)] = Field(
        default=12 * 3600.0, description="Expected run time of a placement without an expiry (queue estimates).")
    node_queue_priorities: dict[str, int] = Field(
        default_factory=dict, description="Queue priority per organization id or name (higher starts first; 0 "
        "when not listed), e.g. '{\"research\": 10}'.")


class HooksSettings(BaseModel):
    """Deployment outputs and hooks (cloudarb.hooks, cloudarb.deploy.k8s_apply): delivery limits, commands, kubeconfig."""

    hooks_commands: bool = Field(default=False, description=(
        "CLOUDARB_HOOKS_COMMANDS: allow command hooks. A command runs on the worker hosts as the worker's "
        "user, so enable it only where every organization admin may run programs there."))
    hooks_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    hooks_max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    hooks_output_limit: Annotated[int, Field(ge=256, le=1_000_000)] = 65_536
    deploy_kubeconfig: Path | None = Field(default=None, description=(
        "CLOUDARB_DEPLOY_KUBECONFIG: kubeconfig of the cluster the Kubernetes export is applied to "
        "(server-side apply in a worker job); unset = no apply."))
    deploy_kube_context: str | None = None


@dataclass(frozen=True)
class Credential:
    """One secret a provider's client needs: the setting it comes from, the client config's field."""

    setting: str
    field: str
    required: bool = True


PROVIDER_CREDENTIALS: dict[str, tuple[Credential, ...]] = {
    "lambda": (Credential("lambda_api_key", "api_key"),),
    "runpod": (Credential("runpod_api_key", "api_key"),),
    "vast": (Credential("vast_api_key", "api_key"),),
    # Provisioning only: listing TensorDock's host nodes (pricing) needs no key.
    "tensordock": (Credential("tensordock_api_key", "api_key", required=False),),
    "gcp": (Credential("gcp_api_key", "api_key"),),
    "aws": (Credential("aws_access_key_id", "aws_access_key_id"),
            Credential("aws_secret_access_key", "aws_secret_access_key"),
            Credential("aws_session_token", "aws_session_token", required=False)),
}
"""Each provider key's credentials, declared beside the key. Providers not listed need none."""

_S = TypeVar("_S", bound=BaseModel)
SECTIONS: tuple[type[BaseModel], ...] = (
    RuntimeSettings, ApiSettings, JobsSettings, IngestSettings, CredentialsSettings, ForecastsSettings,
    NodesSettings,
    DeploySettings,
    HooksSettings,
)


class Settings(RuntimeSettings, ApiSettings, JobsSettings, IngestSettings, CredentialsSettings, ForecastsSettings,
               NodesSettings,
               DeploySettings, HooksSettings, BaseSettings):
    """Every knob of the application, declared in its section above; defaults give the embedded mode
    (SQLite, in-process jobs). Each field is read from ``CLOUDARB_<FIELD>`` (or ``.env``), the names the
    README and ``.env.example`` document; a section is also one typed object,
    ``settings.section(JobsSettings)``."""

    model_config = SettingsConfigDict(env_prefix="CLOUDARB_", env_file=".env", extra="ignore")

    def section(self, kind: type[_S]) -> _S:
        """One section of these settings as its own typed object (for code that needs only that part)."""
        return kind.model_validate({name: getattr(self, name) for name in kind.model_fields})

    def credentials(self, provider: str) -> dict[Credential, SecretStr | None]:
        """The credentials of one provider key and their values (empty for a provider that needs none)."""
        return {c: getattr(self, c.setting) for c in PROVIDER_CREDENTIALS.get(provider, ())}

    @field_validator("forecast_holidays")
    @classmethod
    def _holiday_calendar(cls, value: str | None) -> str | None:
        """A calendar the holidays package knows, e.g. 'US' or 'US-WA' (the forecasting model's own check)."""
        if value:
            from forecasting.models.profile import holiday_dates

            holiday_dates(value, range(2024, 2025))
        return value or None

    @field_validator("forecast_timezone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("ingest_providers", mode="before")
    @classmethod
    def _provider_list(cls, value: object) -> object:
        """Accept 'lambda,vast' (or a JSON list) from the environment; keys are lowercase."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                value = json.loads(text)
            else:
                value = [part for part in text.split(",") if part.strip()]
        if isinstance(value, list):
            return [str(v).strip().lower() for v in value]
        return value

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
