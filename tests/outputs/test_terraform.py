"""Terraform JSON: valid JSON with known top-level blocks, every resource's required arguments (a table
curated from the provider docs), references that resolve, spot and GPU forms per line, unsupported lines
listed, golden files; ``terraform validate`` only where a binary and its providers are available."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cloudarb.deploy.renderers import Plan, Rendered, render
from tests.outputs.support import check_golden, fleet_plan, mixed_plan

TOP_LEVEL = {"//", "terraform", "provider", "variable", "locals", "resource", "data", "output", "module"}

# From the provider docs: hashicorp/terraform-provider-aws website/docs/r/instance.html.markdown,
# terraform-provider-google website/docs/r/compute_instance.html.markdown, terraform-provider-azurerm
# website/docs/r/linux_virtual_machine.html.markdown, network_interface and public_ip.
# required: arguments that must be present; known: every argument we may write (a typo fails).
SCHEMA: dict[str, dict[str, Any]] = {
    "aws_instance": {
        "required": {"ami", "instance_type"},
        "known": {"count", "provider", "ami", "instance_type", "key_name", "tags", "instance_market_options",
                  "subnet_id", "vpc_security_group_ids", "user_data", "root_block_device"},
        "blocks": {"instance_market_options": ({"market_type"}, {"market_type", "spot_options"}),
                   "instance_market_options.spot_options": (set(), {"max_price", "spot_instance_type",
                                                                    "instance_interruption_behavior", "valid_until"})},
    },
    "google_compute_instance": {
        "required": {"name", "machine_type", "boot_disk", "network_interface"},
        "known": {"count", "provider", "name", "machine_type", "zone", "boot_disk", "network_interface",
                  "guest_accelerator", "scheduling", "labels", "metadata", "tags"},
        "blocks": {"boot_disk": (set(), {"initialize_params", "auto_delete", "device_name", "source"}),
                   "boot_disk.initialize_params": (set(), {"image", "size", "type", "labels"}),
                   "network_interface": (set(), {"network", "subnetwork", "access_config"}),
                   "guest_accelerator": ({"type", "count"}, {"type", "count"}),
                   "scheduling": (set(), {"on_host_maintenance", "automatic_restart", "preemptible",
                                          "provisioning_model", "instance_termination_action", "max_run_duration"})},
    },
    "azurerm_linux_virtual_machine": {
        "required": {"name", "resource_group_name", "location", "size", "admin_username", "network_interface_ids",
                     "os_disk"},
        "known": {"count", "provider", "name", "resource_group_name", "location", "size", "admin_username",
                  "network_interface_ids", "os_disk", "admin_ssh_key", "source_image_reference", "source_image_id",
                  "priority", "eviction_policy", "max_bid_price", "tags"},
        "blocks": {"os_disk": ({"caching", "storage_account_type"}, {"caching", "storage_account_type",
                                                                       "disk_size_gb"}),
                   "admin_ssh_key": ({"username", "public_key"}, {"username", "public_key"}),
                   "source_image_reference": ({"publisher", "offer", "sku", "version"},
                                              {"publisher", "offer", "sku", "version"})},
    },
    "azurerm_network_interface": {
        "required": {"name", "location", "resource_group_name", "ip_configuration"},
        "known": {"count", "name", "location", "resource_group_name", "ip_configuration", "tags"},
        "blocks": {"ip_configuration": ({"name", "private_ip_address_allocation"},
                                        {"name", "subnet_id", "private_ip_address_allocation",
                                         "public_ip_address_id"})},
    },
    "azurerm_public_ip": {
        "required": {"name", "resource_group_name", "location", "allocation_method"},
        "known": {"count", "name", "resource_group_name", "location", "allocation_method", "sku", "tags"},
        "blocks": {},
    },
}
REF = re.compile(r"\$\{\s*(var|local|aws_instance|google_compute_instance|azurerm_[a-z_]+)\.([A-Za-z0-9_]+)")


def documents(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {f.path: json.loads(f.content) for f in rendered.files}


def merged(rendered: Rendered) -> dict[str, Any]:
    out: dict[str, Any] = {"resource": {}, "variable": {}, "output": {}, "provider": {}, "locals": {}}
    for doc in documents(rendered).values():
        for block in ("variable", "output", "provider", "locals"):
            out[block].update(doc.get(block, {}))
        for rtype, items in doc.get("resource", {}).items():
            out["resource"].setdefault(rtype, {}).update(items)
    return out


def _block_items(value: Any) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else [value]


def _check_blocks(rtype: str, name: str, body: dict[str, Any], problems: list[str]) -> None:
    for path, (required, known) in SCHEMA[rtype]["blocks"].items():
        head, _, sub = path.partition(".")
        for outer in _block_items(body.get(head, [])) if head in body else []:
            targets = _block_items(outer.get(sub)) if sub and sub in outer else ([] if sub else [outer])
            for item in targets:
                if required - item.keys():
                    problems.append(f"{rtype}.{name}.{path}: missing {sorted(required - item.keys())}")
                if item.keys() - known:
                    problems.append(f"{rtype}.{name}.{path}: unknown {sorted(item.keys() - known)}")


def structure_problems(rendered: Rendered) -> list[str]:
    problems: list[str] = []
    for path, doc in documents(rendered).items():
        if set(doc) - TOP_LEVEL:
            problems.append(f"{path}: unknown top-level blocks {sorted(set(doc) - TOP_LEVEL)}")
    whole = merged(rendered)
    for rtype, items in whole["resource"].items():
        if rtype not in SCHEMA:
            problems.append(f"no argument table for {rtype}")
            continue
        for name, body in items.items():
            missing = SCHEMA[rtype]["required"] - body.keys()
            unknown = body.keys() - SCHEMA[rtype]["known"]
            if missing:
                problems.append(f"{rtype}.{name}: missing required {sorted(missing)}")
            if unknown:
                problems.append(f"{rtype}.{name}: unknown arguments {sorted(unknown)}")
            _check_blocks(rtype, name, body, problems)
    text = "\n".join(f.content for f in rendered.files)
    for kind, name in REF.findall(text):
        if kind == "var" and name not in whole["variable"]:
            problems.append(f"undeclared variable {name}")
        elif kind == "local" and name not in whole["locals"]:
            problems.append(f"undeclared local {name}")
        elif kind not in ("var", "local") and name not in whole["resource"].get(kind, {}):
            problems.append(f"reference to missing resource {kind}.{name}")
    aliases = {f"aws.{p['alias']}" for p in whole["provider"].get("aws", [])}
    for body in whole["resource"].get("aws_instance", {}).values():
        if body.get("provider") not in aliases:
            problems.append(f"provider {body.get('provider')} is not configured")
    return problems


def line_of(plan: Plan, name: str) -> Any:
    index = int(name.split("_")[1])
    return next(ln for ln in plan.lines if ln.index == index)


@pytest.mark.parametrize("plan", [fleet_plan(), mixed_plan()], ids=["fleet", "mixed"])
def test_structure_and_required_arguments(plan: Plan) -> None:
    rendered = render(plan, "terraform")
    assert all(f.path.endswith(".tf.json") for f in rendered.files)
    assert structure_problems(rendered) == []


def test_the_structure_check_fails_on_a_broken_file() -> None:
    rendered = render(mixed_plan(), "terraform")
    docs = documents(rendered)
    docs["gcp.tf.json"]["resource"]["google_compute_instance"]["line_0_pretrain"].pop("machine_type")
    docs["aws.tf.json"]["resource"]["aws_instance"]["line_2_serve"]["instance_typ"] = "x"
    docs["cloudarb.tf.json"]["resources"] = {}
    broken = Rendered(rendered.format, tuple(type(f)(f.path, json.dumps(docs[f.path])) for f in rendered.files))
    problems = structure_problems(broken)
    assert any("missing required ['machine_type']" in p for p in problems)
    assert any("unknown arguments ['instance_typ']" in p for p in problems)
    assert any("unknown top-level blocks ['resources']" in p for p in problems)


def test_spot_gpu_and_counts_follow_each_line() -> None:
    plan = mixed_plan()
    whole = merged(render(plan, "terraform"))
    for name, body in whole["resource"]["aws_instance"].items():
        line = line_of(plan, name)
        assert body["count"] == line.instances and body["instance_type"] == line.instance_type
        assert ("instance_market_options" in body) == line.spot
    for name, body in whole["resource"]["google_compute_instance"].items():
        line = line_of(plan, name)
        assert body["count"] == line.instances
        assert body["scheduling"]["on_host_maintenance"] == "TERMINATE"  # GPUs require it, spot or not
        accel = body["guest_accelerator"][0]
        assert type(accel["count"]) is int and accel["count"] == line.gpus_per_instance
        if line.spot:
            assert body["scheduling"]["provisioning_model"] == "SPOT"
            assert body["scheduling"]["automatic_restart"] is False
        else:
            assert body["scheduling"]["provisioning_model"] == "STANDARD"
        assert all(re.fullmatch(r"[a-z0-9_-]{1,63}", k) and re.fullmatch(r"[a-z0-9_-]{0,63}", v)
                   for k, v in body["labels"].items())
    n1 = whole["resource"]["google_compute_instance"]["line_1_serve"]
    assert n1["machine_type"] == "n1-standard-8" and n1["guest_accelerator"][0]["type"] == "nvidia-tesla-t4"
    assert whole["resource"]["google_compute_instance"]["line_0_pretrain"]["guest_accelerator"][0]["type"] == (
        "nvidia-h100-80gb")
    for name, body in whole["resource"]["azurerm_linux_virtual_machine"].items():
        line = line_of(plan, name)
        assert ("priority" in body) == line.spot
    fleet = fleet_plan()
    spot_vm = merged(render(fleet, "terraform"))["resource"]["azurerm_linux_virtual_machine"]
    (vm_name, vm), = spot_vm.items()
    assert vm["priority"] == "Spot" and vm["eviction_policy"] == "Delete"
    assert vm["max_bid_price"] == line_of(fleet, vm_name).price_per_instance
    aws = merged(render(fleet, "terraform"))["resource"]["aws_instance"]["line_0_llm_pretrain"]
    spot = aws["instance_market_options"]
    assert spot["market_type"] == "spot"
    assert float(spot["spot_options"]["max_price"]) == pytest.approx(fleet.lines[0].price_per_instance, abs=1e-4)


def test_lines_without_a_terraform_provider_are_listed_not_dropped() -> None:
    plan = mixed_plan()
    rendered = render(plan, "terraform")
    root = documents(rendered)["cloudarb.tf.json"]
    listed = root["locals"]["cloudarb_unsupported_lines"]
    assert [x["line"] for x in listed] == [3, 4]
    assert [(s.line, s.provider) for s in rendered.skipped] == [(3, "local"), (4, "runpod")]
    assert "2 not" in root["//"]
    rendered_names = {n for items in merged(rendered)["resource"].values() for n in items}
    for line in plan.lines:
        assert (f"line_{line.index}_" in " ".join(rendered_names)) != (line.index in (3, 4))


def test_exports_never_carry_the_deploy_stage_ownership_mark() -> None:
    """What Terraform creates is the team's: the reconciler must never adopt or destroy it."""
    text = "\n".join(f.content for f in render(mixed_plan(), "terraform").files)
    assert "cloudarb:key" not in text and "cloudarb:export" in text


def test_golden_fleet() -> None:
    check_golden(render(fleet_plan(), "terraform"), "terraform")


def _provider_mirror() -> str | None:
    for candidate in (os.environ.get("TF_PLUGIN_CACHE_DIR"), str(Path.home() / ".terraform.d" / "plugins")):
        if candidate and (Path(candidate) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return candidate
    return None


def test_terraform_validate(tmp_path: Path) -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed")
    mirror = _provider_mirror()
    if mirror is None:
        pytest.skip("terraform is installed but no provider mirror holds hashicorp/aws, google and azurerm "
                    "(terraform init needs registry.terraform.io, unreachable here)")
    for f in render(mixed_plan(), "terraform").files:
        (tmp_path / f.path).write_text(f.content)
    env = {**os.environ, "TF_PLUGIN_CACHE_DIR": mirror, "TF_IN_AUTOMATION": "1"}
    init = subprocess.run([binary, "init", "-backend=false", "-input=false"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    if init.returncode != 0:
        pytest.skip(f"terraform init failed with the mirror: {init.stderr.strip()[:300]}")
    done = subprocess.run([binary, "validate", "-json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert json.loads(done.stdout)["valid"], done.stdout
