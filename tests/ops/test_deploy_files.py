"""k8s/, docker-compose.yml and the Dockerfile: valid (kubernetes-validate strict, 1.30) and right
(ordering, probes, grace periods, pinned images, no secret in the files, hardened pods)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 900  # JobsSettings.job_timeout_s default
K8S_FILES = sorted((ROOT / "k8s").glob("*.yaml"))


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for path in K8S_FILES for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == kind}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("obj", k8s_objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_is_valid_for_kubernetes_1_30(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, "1.30.0", strict=True)


def test_no_secret_values_in_the_manifests() -> None:
    assert not by_kind("Secret"), "secrets come from an existing Secret, never from the manifests"
    text = "\n".join(p.read_text() for p in K8S_FILES)
    assert "replace-me" not in text and "stringData" not in text
    for obj in by_kind("Deployment").values():
        for c in containers(obj):
            for env in c.get("env", []):
                assert "value" not in env or not re.search(r"KEY|TOKEN|PASSWORD|SECRET", env["name"]), env


def test_images_are_pinned() -> None:
    workloads = [*by_kind("Deployment").values(), *by_kind("StatefulSet").values(), *by_kind("Job").values()]
    for obj in workloads:
        for c in containers(obj):
            image = c["image"]
            assert ":" in image and not image.endswith(":latest"), f"{obj['metadata']['name']}: {image}"


def test_migration_runs_before_api_and_workers() -> None:
    job = next(iter(by_kind("Job").values()))
    assert "db upgrade" in " ".join(job["spec"]["template"]["spec"]["containers"][0]["command"])
    for name in ("cloudarb-api", "cloudarb-worker"):
        inits = pod_spec(by_kind("Deployment")[name]).get("initContainers", [])
        assert any(c["command"][:3] == ["cloudarb", "db", "check"] and "--wait" in c["command"] for c in inits), name


def test_probes_and_grace() -> None:
    deployments = by_kind("Deployment")
    api = pod_spec(deployments["cloudarb-api"])["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    worker_spec = pod_spec(deployments["cloudarb-worker"])
    worker = worker_spec["containers"][0]
    assert "--heartbeat-file" in worker["command"] and "--metrics-port" in worker["command"]
    heartbeat = worker["command"][worker["command"].index("--heartbeat-file") + 1]
    assert heartbeat in " ".join(worker["livenessProbe"]["exec"]["command"])
    assert worker_spec["terminationGracePeriodSeconds"] > JOB_TIMEOUT_S
    for obj in [*deployments.values(), *by_kind("StatefulSet").values()]:
        for c in pod_spec(obj)["containers"]:
            assert "livenessProbe" in c and "readinessProbe" in c, obj["metadata"]["name"]


def test_pods_are_hardened_and_sized() -> None:
    workloads = [*by_kind("Deployment").values(), *by_kind("StatefulSet").values(), *by_kind("Job").values()]
    for obj in workloads:
        name = obj["metadata"]["name"]
        assert pod_spec(obj)["securityContext"]["runAsNonRoot"] is True, name
        for c in containers(obj):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], name


def test_pdb_hpa_and_scrape_annotations() -> None:
    pdbs = {o["spec"]["selector"]["matchLabels"]["app"] for o in by_kind("PodDisruptionBudget").values()}
    hpas = {o["spec"]["scaleTargetRef"]["name"] for o in by_kind("HorizontalPodAutoscaler").values()}
    assert {"cloudarb-api", "cloudarb-worker"} <= pdbs and {"cloudarb-api", "cloudarb-worker"} <= hpas
    for name, port in (("cloudarb-api", "8000"), ("cloudarb-worker", "9100")):
        notes = by_kind("Deployment")[name]["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/port"] == port


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


def test_compose_orders_migration_and_pins_images() -> None:
    services = compose()["services"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert "db upgrade" in " ".join(services["migrate"]["command"])
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and "latest" not in image.rpartition(":")[2], f"{name}: {image}"


def test_compose_healthchecks_grace_and_monitoring_profile() -> None:
    doc = compose()
    services = doc["services"]
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "/livez" in " ".join(services["worker"]["healthcheck"]["test"])
    grace = services["worker"]["stop_grace_period"]
    assert int(grace.rstrip("s")) > JOB_TIMEOUT_S
    assert "--appendonly" in services["redis"]["command"] and "redisdata:/data" in services["redis"]["volumes"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
    mounts = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for path in ("monitoring/prometheus/prometheus.yml", "monitoring/prometheus/rules",
                 "monitoring/grafana/provisioning", "monitoring/grafana/dashboards"):
        assert f"./{path}:" in mounts and (ROOT / path).exists(), path
    assert "metrics-token" in services["prometheus"]["secrets"]
    assert doc["secrets"]["metrics-token"] == {"environment": "CLOUDARB_METRICS_TOKEN"}
    secret_env = doc["x-cloudarb-env"]["CLOUDARB_SECRET_KEY"]
    assert secret_env.startswith("${CLOUDARB_SECRET_KEY:?"), "the key comes from the environment, required"


def test_dockerfile_builds_the_dashboard_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(froms) == 2 and froms[0].startswith("node:") and all(":" in f and "latest" not in f for f in froms)
    assert "npm ci" in text and "npm run build" in text
    assert "COPY --from=dashboard /frontend/dist" in text and "CLOUDARB_DASHBOARD_DIR=/app/frontend/dist" in text
    assert re.search(r"^USER \d+", text, re.MULTILINE), "a numeric user (runAsNonRoot checks the number)"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "frontend/node_modules" in ignored and ".venv" in ignored


def test_db_check_tells_whether_the_schema_is_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudarb.cli.main import app
    from cloudarb.config import get_settings
    from cloudarb.db import migrate

    monkeypatch.setenv("CLOUDARB_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        before = runner.invoke(app, ["db", "check"])
        assert before.exit_code == 1 and "not at revision" in before.output
        migrate.upgrade(f"sqlite:///{tmp_path / 'x.db'}")
        after = runner.invoke(app, ["db", "check", "--wait", "5"])
        assert after.exit_code == 0, after.output
    finally:
        get_settings.cache_clear()
