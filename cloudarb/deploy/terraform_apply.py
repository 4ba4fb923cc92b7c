"""Terraform deployments: the rendered configuration applied and destroyed by the organization's command
hook, every run recorded on the deployment.

Apply (job ``apply_job``, kind ``deploy``): the Terraform JSON of the deployment's lines
(``cloudarb.deploy.renderers.terraform``, tagged with the deployment's expiry) is written into a working
directory of its own (``<data dir>/terraform/<deployment id>``, with ``cloudarb.auto.tfvars.json`` when
the request gave variables), then the command hooks naming ``terraform.apply`` run there
(``cloudarb.hooks.commands``) with, besides the hook envelope on stdin and the ``CLOUDARB_EVENT``
family, ``CLOUDARB_DEPLOYMENT_ID``, ``CLOUDARB_TERRAFORM_DIR``, ``CLOUDARB_TERRAFORM_ACTION`` (apply |
destroy) and ``CLOUDARB_TERRAFORM_OUTPUTS``: the file where the hook may write ``terraform output
-json``, from which the outputs and every IP address in them are recorded. Each run's exit code and
bounded output are a step on the deployment's stream and an entry of ``details.runs``. A failed run
fails the deployment with the hook's output as the reason (what it may have created is destroyed at
``done`` or expiry, as for any deployment).

Teardown (``teardown_job``: done, destroy, expiry, budget hard stop): the hooks naming
``terraform.destroy`` run in the same directory. The deployment ends only when every one exited 0
and each local state file in the directory (``terraform.tfstate``, where the configuration keeps its
state locally) lists no managed resource; with a remote backend the destroy's exit status is
Terraform's own statement. Otherwise it stays ``ending``, is alerted, and the job and then the sweep
run the destroy again. A deployment whose apply never ran ends at once (nothing was applied). Workers
on several hosts need a shared data directory or a remote backend, since the state lives where the
apply ran.

Nothing is metered (``terraform_submit.NOT_METERED``); there are no instance rows: CloudArb holds no
handle on the resources, the Terraform state does.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cloudarb.db.models import JobRun
from cloudarb.db.models_deploy import Deployment
from cloudarb.db.types import utcnow
from cloudarb.deploy.alerts import raise_alert
from cloudarb.deploy.env import DeployEnv, env_for
from cloudarb.deploy.export import export
from cloudarb.deploy.run import set_status
from cloudarb.deploy.terraform_submit import APPLY_FUNCTION
from cloudarb.hooks.commands import CommandRun, run_commands
from cloudarb.jobs.errors import JobInputError, TransientJobError

if TYPE_CHECKING:
    from cloudarb.config import Settings
    from cloudarb.jobs.runtime import JobContext

log = logging.getLogger(__name__)

OUTPUTS_FILE = "cloudarb-outputs.json"
TFVARS_FILE = "cloudarb.auto.tfvars.json"
STATE_FILE = "terraform.tfstate"
EVENT_OUTPUT_LIMIT = 2000


def workdir(settings: Settings, deployment_id: str) -> Path:
    return Path(settings.data_dir) / "terraform" / deployment_id


def _env(jc: JobContext) -> DeployEnv:
    def emit(step: str, payload: dict[str, Any]) -> None:
        message = payload.get("reason") or payload.get("status") or ""
        jc.progress(step, message=str(message), **{k: v for k, v in payload.items() if k != "reason"},
                    reason=payload.get("reason"))

    return env_for(jc.ctx).with_emit(emit)


def _load(jc: JobContext) -> Deployment:
    with jc.ctx.db.session() as session:
        dep = session.get(Deployment, jc.target_id)
        if dep is None or dep.target != "terraform":
            raise JobInputError(f"terraform deployment {jc.target_id} not found")
        return dep


def write_config(jc: JobContext, dep: Deployment, directory: Path) -> list[str]:
    """Render the deployment's lines into ``directory`` (the files are replaced, the state kept)."""
    lines = [ln["index"] for ln in dep.spec.get("lines", [])]
    with jc.ctx.db.session() as session:
        rendered = export(session, organization_id=dep.organization_id, optimization_id=dep.optimization_id or "",
                          fmt="terraform", lines=lines, expires_at=dep.expires_at)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for f in rendered.files:
        (directory / f.path).write_text(f.content)
        written.append(f.path)
    variables = (dep.details or {}).get("variables") or {}
    if variables:
        (directory / TFVARS_FILE).write_text(json.dumps(variables, indent=2, sort_keys=True) + "\n")
        written.append(TFVARS_FILE)
    return written


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def parse_outputs(text: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(outputs, addresses) of ``terraform output -json``: ``{name: {value, type, sensitive}}``. Sensitive
    values are not kept; every IP address found in a value is an address (``aws_public_ips.<line>[0]``)."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("terraform output -json is an object of outputs")
    outputs: dict[str, Any] = {}
    addresses: list[dict[str, str]] = []
    for name, item in data.items():
        if not isinstance(item, dict) or "value" not in item:
            raise ValueError(f"output {name!r} has no value")
        if item.get("sensitive"):
            outputs[name] = "(sensitive)"
            continue
        outputs[name] = item["value"]
        for path, leaf in _walk(item["value"], name):
            if isinstance(leaf, str):
                try:
                    ipaddress.ip_address(leaf)
                except ValueError:
                    continue
                addresses.append({"output": path, "address": leaf})
    return outputs, addresses


def _run(jc: JobContext, env: DeployEnv, dep: Deployment, action: str, directory: Path) -> list[CommandRun]:
    outputs = directory / OUTPUTS_FILE
    if action == "apply":
        outputs.unlink(missing_ok=True)
    payload = {"deployment_id": dep.id, "name": dep.name, "optimization_id": dep.optimization_id,
               "action": action, "directory": str(directory), "expires_at": dep.expires_at.isoformat()}
    env.emit("hook", {"reason": f"running the terraform.{action} command hooks in {directory}"})
    runs = run_commands(jc.ctx, organization_id=dep.organization_id, event=f"terraform.{action}", payload=payload,
                        subject_id=dep.id, cwd=str(directory), env={
                            "CLOUDARB_DEPLOYMENT_ID": dep.id, "CLOUDARB_TERRAFORM_DIR": str(directory),
                            "CLOUDARB_TERRAFORM_ACTION": action, "CLOUDARB_TERRAFORM_OUTPUTS": str(outputs)})
    for run in runs:
        out = run.attempt.output or ""
        jc.progress("hook", message=f"{run.hook}: {run.attempt.summary}", hook=run.hook, action=action,
                    exit_code=run.attempt.exit_code, ok=run.attempt.ok, delivery_id=run.delivery_id,
                    output=out if len(out) <= EVENT_OUTPUT_LIMIT else out[-EVENT_OUTPUT_LIMIT:])
    _record(env, dep.id, runs=[{**r.as_dict(), "action": action, "at": utcnow().isoformat()} for r in runs])
    return runs


def _record(env: DeployEnv, deployment_id: str, *, runs: list[dict[str, Any]] | None = None,
            **values: Any) -> None:
    with env.db.session() as session:
        dep = session.get(Deployment, deployment_id)
        if dep is None:
            return
        details = dict(dep.details or {})
        if runs:
            details["runs"] = [*details.get("runs", []), *runs]
        details.update(values)
        dep.details = details


def _failure(runs: list[CommandRun], event: str) -> str | None:
    if not runs:
        return f"no command hook ran for {event} (none enabled, or command hooks are off)"
    last = runs[-1]
    if last.attempt.ok:
        return None
    tail = (last.attempt.output or "").strip()[-500:]
    return f"{event} hook '{last.hook}' failed: {last.attempt.summary}" + (f": {tail}" if tail else "")


def apply_job(jc: JobContext) -> str:
    """Job body: render into the working directory, run the apply hooks, record the runs and outputs."""
    env = _env(jc)
    dep = _load(jc)
    if dep.status in ("ending", "ended"):
        return "finished"
    about = {"target": "terraform", "deployment_id": dep.id, "name": dep.name,
             "optimization_id": dep.optimization_id, "expires_at": dep.expires_at.isoformat()}
    if dep.status == "pending":
        refused = env.notify(dep.organization_id, "deploy.before", about, True)
        if refused:
            reason = f"a deploy.before hook refused: {refused[0]}"
            set_status(env, dep.id, "failed", when=("pending",), reason=reason)
            raise JobInputError(reason)
    if not set_status(env, dep.id, "deploying", when=("pending", "deploying")):
        return "finished"  # torn down before it started: nothing is applied
    directory = workdir(jc.ctx.settings, dep.id)
    files = write_config(jc, dep, directory)
    _record(env, dep.id, directory=str(directory), files=files)
    env.emit("render", {"reason": f"{len(files)} file(s) in {directory}", "files": files})
    runs = _run(jc, env, dep, "apply", directory)
    error = _failure(runs, "terraform.apply")
    if error is None:
        outputs_file = directory / "cloudarb-outputs.json"
        if outputs_file.exists():
            try:
                outputs, addresses = parse_outputs(outputs_file.read_text())
            except ValueError as exc:
                outputs, addresses = {}, []
                env.emit("outputs", {"reason": f"{OUTPUTS_FILE} is not terraform output -json: {exc}"})
            _record(env, dep.id, outputs=outputs, addresses=addresses)
            env.emit("outputs", {"reason": f"{len(outputs)} output(s), {len(addresses)} address(es)",
                                 "addresses": [a["address"] for a in addresses]})
    skipped = (dep.details or {}).get("skipped_lines") or []
    status = "failed" if error else "partial" if skipped else "running"
    set_status(env, dep.id, status, when=("deploying",), reason=error)
    env.notify(dep.organization_id, "deploy.after", {**about, "status": status, "error": error,
                                                     "runs": [r.as_dict() for r in runs]}, False)
    if error:
        raise JobInputError(error)
    return "finished"


def _applying(jc: JobContext, deployment_id: str) -> bool:
    """Whether the deployment's apply job is running now (a queued one finds it ending and stops)."""
    with jc.ctx.db.session() as session:
        return session.scalar(select(JobRun.id).where(
            JobRun.target_id == deployment_id, JobRun.function == APPLY_FUNCTION,
            JobRun.status == "running")) is not None


def state_clear(directory: Path) -> tuple[bool, str]:
    """Whether every local state file under ``directory`` lists no managed resource (and why not)."""
    for state in sorted(directory.rglob(STATE_FILE)):
        if ".terraform" in state.parts:
            continue
        try:
            data = json.loads(state.read_text() or "{}")
        except (OSError, ValueError) as exc:
            return False, f"{state} cannot be read: {exc}"
        left = [f"{r.get('type')}.{r.get('name')}" for r in data.get("resources") or [] if r.get("mode") == "managed"
                and r.get("instances")]
        if left:
            return False, f"{state} still lists {', '.join(left[:10])}"
    return True, ""


def teardown_job(jc: JobContext) -> str:
    """Job body: run the destroy hooks; the deployment ends only on their success and an empty state."""
    env = _env(jc)
    dep = _load(jc)
    reason = dep.end_reason or "teardown"
    step = "done" if reason.startswith("done") else "destroy"
    payload = {"deployment_id": dep.id, "name": dep.name, "reason": reason}
    runs_so_far = (dep.details or {}).get("runs", [])
    directory = workdir(jc.ctx.settings, dep.id)
    if dep.status == "ended":
        return "finished"
    set_status(env, dep.id, "ending", when=("pending", "deploying", "running", "partial", "failed", "ending"),
               reason=reason)
    if _applying(jc, dep.id):  # its hook may be creating resources now: destroy once it has finished
        raise TransientJobError("the apply is still running; the destroy follows it")
    if not any(r.get("action") == "apply" for r in runs_so_far) and not directory.exists():
        set_status(env, dep.id, "ended", when=("ending",), reason=f"{reason} (nothing was applied)")
        return "finished"
    if not any(r.get("action") == "destroy" for r in runs_so_far):  # the first try (a retry does not ask again)
        env.notify(dep.organization_id, f"{step}.before", payload, True)  # informs; never blocks a teardown
    if not directory.exists():
        write_config(jc, dep, directory)
    runs = _run(jc, env, dep, "destroy", directory)
    error = _failure(runs, "terraform.destroy")
    if error is None:
        clear, why = state_clear(directory)
        error = None if clear else f"the destroy hook exited 0 but {why}"
    if error is None:
        if set_status(env, dep.id, "ended", when=("ending",)):
            env.emit("terminated", {"reason": "terraform destroy hooks succeeded; no resource left in local state"})
            env.notify(dep.organization_id, f"{step}.after", payload, False)
        return "finished"
    with env.db.session() as session:
        raise_alert(session, kind="leaked", dedupe=f"terraform:{dep.id}", organization_id=dep.organization_id,
                    message=f"Terraform deployment {dep.id} could not be destroyed: {error}; its resources may "
                            "still be billed; retried", deployment_id=dep.id)
    env.emit("destroy_retry", {"reason": error})
    raise TransientJobError(error)
