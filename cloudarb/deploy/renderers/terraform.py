"""Terraform JSON (``*.tf.json``) for the lines on providers with an official Terraform provider.

One file per cloud (``aws.tf.json``, ``gcp.tf.json``, ``azure.tf.json``: its provider configurations,
resources and outputs), ``variables.tf.json`` (credentials, key names, images, networks: nothing secret
is written into the files) and ``cloudarb.tf.json`` (``required_providers`` and the lines no Terraform
provider can create, as a ``//`` comment and in ``locals.cloudarb_unsupported_lines``, so ``terraform
console`` shows them too). A line of N instances is one resource with ``count = N``.

Spot lines use each provider's own spot form, with the chosen hourly price as the cap: AWS
``instance_market_options`` (one-time, terminate), GCP ``scheduling`` with ``provisioning_model =
"SPOT"`` (GPUs also require ``on_host_maintenance = "TERMINATE"``, spot or not), Azure ``priority =
"Spot"`` with ``eviction_policy = "Delete"`` and ``max_bid_price``. Arguments follow the provider
docs: hashicorp/terraform-provider-aws ``r/instance``, terraform-provider-google
``r/compute_instance``, terraform-provider-azurerm ``r/linux_virtual_machine``.
"""

from __future__ import annotations

import json
from typing import Any

from cloudarb.deploy.renderers import accelerators
from cloudarb.deploy.renderers.plan import TAG_EXPORT, Line, Plan, Rendered, RenderedFile, Skipped, slug

FORMAT = "terraform"
SUPPORTED = ("aws", "gcp", "azure")
REQUIRED_PROVIDERS = {
    "aws": {"source": "hashicorp/aws", "version": ">= 5.0"},
    "gcp": {"source": "hashicorp/google", "version": ">= 5.0"},
    "azure": {"source": "hashicorp/azurerm", "version": ">= 4.0"},
}
PROVIDER_NAME = {"aws": "aws", "gcp": "google", "azure": "azurerm"}
SSH_VARIABLES = {
    "ssh_user": {"type": "string", "default": "cloudarb", "description": "Login user on the machines."},
    "ssh_public_key": {"type": "string", "description": "OpenSSH public key installed for ssh_user."},
}


def _var(name: str) -> str:
    return "${var." + name + "}"


def _resource_name(line: Line) -> str:
    return f"line_{line.index}_{slug(line.workload_id, limit=40).replace('-', '_')}"


def _alias(region: str) -> str:
    return slug(region).replace("-", "_")


def _slot_tags(plan: Plan, line: Line) -> dict[str, str]:
    tags = plan.tags(line)
    tags[TAG_EXPORT] = plan.key(line) + "-${count.index}"
    return tags


def _aws(plan: Plan, lines: list[Line]) -> tuple[dict[str, Any], dict[str, Any]]:
    regions = sorted({ln.region for ln in lines})
    providers = [{"alias": _alias(r), "region": r, "access_key": _var("aws_access_key"),
                  "secret_key": _var("aws_secret_key")} for r in regions]
    resources: dict[str, Any] = {}
    outputs: dict[str, str] = {}
    for ln in lines:
        name = _resource_name(ln)
        body: dict[str, Any] = {
            "provider": f"aws.{_alias(ln.region)}",
            "count": ln.instances,
            "ami": "${var.aws_ami[\"" + ln.region + "\"]}",
            "instance_type": ln.instance_type,
            "key_name": _var("aws_key_name"),
            "tags": {"Name": plan.key(ln) + "-${count.index}", **_slot_tags(plan, ln)},
        }
        if ln.spot:
            body["instance_market_options"] = {
                "market_type": "spot",
                "spot_options": {"max_price": f"{ln.price_per_instance:.4f}", "spot_instance_type": "one-time",
                                 "instance_interruption_behavior": "terminate"},
            }
        resources[name] = body
        outputs[name] = "${aws_instance." + name + "[*].public_ip}"
    variables = {
        "aws_access_key": {"type": "string", "default": None, "sensitive": True,
                           "description": "AWS access key id; null = the provider's usual chain (env, profile)."},
        "aws_secret_key": {"type": "string", "default": None, "sensitive": True,
                           "description": "AWS secret access key; null = the provider's usual chain."},
        "aws_key_name": {"type": "string", "description": "Name of the EC2 key pair for SSH."},
        "aws_ami": {"type": "map(string)", "description": "AMI id per region (a GPU image with drivers), "
                    f"for regions {', '.join(regions)}."},
    }
    doc = {"provider": {"aws": providers}, "resource": {"aws_instance": resources},
           "output": {"aws_public_ips": {"value": outputs, "description": "Public IPs per line."}}}
    return doc, variables


def _gcp_accelerator(line: Line) -> tuple[str, str, int]:
    """(machine type, accelerator type, GPUs per machine); an N1 offer is 'n1-standard-8+1xnvidia-tesla-t4'."""
    machine, plus, accel = line.instance_type.partition("+")
    if plus:
        count, _, kind = accel.partition("x")
        if count.isdigit() and kind:
            return machine, kind, int(count)
    return machine, accelerators.gcp_accelerator(line.gpu_model), line.gpus_per_instance


def _gcp(plan: Plan, lines: list[Line]) -> tuple[dict[str, Any], dict[str, Any]]:
    resources: dict[str, Any] = {}
    outputs: dict[str, str] = {}
    zones: dict[str, str] = {}
    for ln in lines:
        name = _resource_name(ln)
        machine, accel, count = _gcp_accelerator(ln)
        zones.setdefault(ln.region, f"{ln.region}-a")
        scheduling: dict[str, Any] = {"on_host_maintenance": "TERMINATE"}
        if ln.spot:
            scheduling.update(preemptible=True, automatic_restart=False, provisioning_model="SPOT",
                              instance_termination_action="DELETE")
        else:
            scheduling.update(automatic_restart=True, provisioning_model="STANDARD")
        resources[name] = {
            "count": ln.instances,
            "name": plan.key(ln) + "-${count.index}",
            "machine_type": machine,
            "zone": "${var.gcp_zones[\"" + ln.region + "\"]}",
            "boot_disk": {"initialize_params": {"image": _var("gcp_image"), "size": 200}},
            "network_interface": [{"network": _var("gcp_network"), "access_config": [{}]}],
            "guest_accelerator": [{"type": accel, "count": count}],
            "scheduling": scheduling,
            "labels": plan.labels(ln),
            "metadata": {"ssh-keys": "${var.ssh_user}:${var.ssh_public_key}"},
        }
        outputs[name] = "${google_compute_instance." + name + "[*].network_interface[0].access_config[0].nat_ip}"
    variables = {
        "gcp_project": {"type": "string", "description": "GCP project id."},
        "gcp_credentials": {"type": "string", "default": None, "sensitive": True,
                            "description": "Service-account key (path or JSON); null = application default."},
        "gcp_image": {"type": "string", "description": "Boot image with GPU drivers (self link or family)."},
        "gcp_network": {"type": "string", "default": "default", "description": "VPC network."},
        "gcp_zones": {"type": "map(string)", "default": zones,
                      "description": "Zone per chosen region (the plan chose regions; pick zones with the GPUs)."},
    }
    provider = {"project": _var("gcp_project"), "credentials": _var("gcp_credentials")}
    doc = {"provider": {"google": provider}, "resource": {"google_compute_instance": resources},
           "output": {"gcp_public_ips": {"value": outputs, "description": "Public IPs per line."}}}
    return doc, variables


def _azure(plan: Plan, lines: list[Line]) -> tuple[dict[str, Any], dict[str, Any]]:
    ips: dict[str, Any] = {}
    nics: dict[str, Any] = {}
    vms: dict[str, Any] = {}
    outputs: dict[str, str] = {}
    for ln in lines:
        name = _resource_name(ln)
        slot = plan.key(ln) + "-${count.index}"
        common = {"count": ln.instances, "resource_group_name": _var("azure_resource_group"), "location": ln.region}
        ips[name] = {**common, "name": slot + "-ip", "allocation_method": "Static", "sku": "Standard",
                     "tags": plan.tags(ln)}
        nics[name] = {**common, "name": slot + "-nic", "tags": plan.tags(ln), "ip_configuration": [{
            "name": "primary", "subnet_id": "${var.azure_subnet_ids[\"" + ln.region + "\"]}",
            "private_ip_address_allocation": "Dynamic",
            "public_ip_address_id": "${azurerm_public_ip." + name + "[count.index].id}"}]}
        vm: dict[str, Any] = {
            **common,
            "name": slot,
            "size": ln.instance_type,
            "admin_username": _var("ssh_user"),
            "network_interface_ids": ["${azurerm_network_interface." + name + "[count.index].id}"],
            "admin_ssh_key": [{"username": _var("ssh_user"), "public_key": _var("ssh_public_key")}],
            "os_disk": {"caching": "ReadWrite", "storage_account_type": "Premium_LRS", "disk_size_gb": 256},
            "source_image_reference": {k: "${var.azure_image." + k + "}" for k in
                                       ("publisher", "offer", "sku", "version")},
            "tags": _slot_tags(plan, ln),
        }
        if ln.spot:
            vm.update(priority="Spot", eviction_policy="Delete", max_bid_price=ln.price_per_instance)
        vms[name] = vm
        outputs[name] = "${azurerm_linux_virtual_machine." + name + "[*].public_ip_address}"
    regions = sorted({ln.region for ln in lines})
    variables = {
        "azure_subscription_id": {"type": "string", "description": "Azure subscription id."},
        "azure_tenant_id": {"type": "string", "default": None, "description": "Tenant; null = az login."},
        "azure_client_id": {"type": "string", "default": None, "sensitive": True,
                            "description": "Service principal id; null = az login or managed identity."},
        "azure_client_secret": {"type": "string", "default": None, "sensitive": True,
                                "description": "Service principal secret."},
        "azure_resource_group": {"type": "string", "description": "Resource group of the machines."},
        "azure_subnet_ids": {"type": "map(string)",
                             "description": f"Subnet id per region, for regions {', '.join(regions)}."},
        "azure_image": {"type": "object({publisher = string, offer = string, sku = string, version = string})",
                        "default": {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2204",
                                    "version": "latest"},
                        "description": "Marketplace image with GPU drivers."},
    }
    provider = {"features": {}, "subscription_id": _var("azure_subscription_id"),
                "tenant_id": _var("azure_tenant_id"), "client_id": _var("azure_client_id"),
                "client_secret": _var("azure_client_secret")}
    doc = {"provider": {"azurerm": provider},
           "resource": {"azurerm_public_ip": ips, "azurerm_network_interface": nics,
                        "azurerm_linux_virtual_machine": vms},
           "output": {"azure_public_ips": {"value": outputs, "description": "Public IPs per line."}}}
    return doc, variables


BUILDERS = {"aws": _aws, "gcp": _gcp, "azure": _azure}


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


def render(plan: Plan) -> Rendered:
    by_provider: dict[str, list[Line]] = {}
    skipped: list[Skipped] = []
    unsupported: list[dict[str, Any]] = []
    for ln in plan.lines:
        if ln.provider in SUPPORTED:
            by_provider.setdefault(ln.provider, []).append(ln)
            continue
        reason = f"no official Terraform provider for '{ln.provider}'"
        skipped.append(Skipped(ln.index, ln.workload_id, ln.provider, reason))
        unsupported.append({"line": ln.index, "workload": ln.workload_id, "provider": ln.provider,
                            "instance_type": ln.instance_type, "region": ln.region, "instances": ln.instances,
                            "reason": reason})
    files: list[RenderedFile] = []
    variables: dict[str, Any] = {}
    for provider in SUPPORTED:
        if provider in by_provider:
            doc, more = BUILDERS[provider](plan, by_provider[provider])
            variables.update(more)
            files.append(RenderedFile(f"{provider}.tf.json", _dump(doc), "application/json"))
    if any(p in by_provider for p in ("gcp", "azure")):
        variables.update(SSH_VARIABLES)
    root: dict[str, Any] = {
        "//": (f"CloudArb optimization {plan.optimization_id} ({plan.name or 'unnamed'}): "
               f"{len(plan.lines) - len(skipped)} line(s) rendered as Terraform, {len(skipped)} not "
               "(listed in locals.cloudarb_unsupported_lines; launch them with cloudarb deploy or the "
               "skypilot/dstack export)"),
        "terraform": {"required_version": ">= 1.5",
                      "required_providers": {PROVIDER_NAME[p]: REQUIRED_PROVIDERS[p] for p in SUPPORTED
                                             if p in by_provider}},
        "locals": {"cloudarb_optimization": plan.optimization_id, "cloudarb_unsupported_lines": unsupported},
    }
    files.insert(0, RenderedFile("cloudarb.tf.json", _dump(root), "application/json"))
    if variables:
        files.append(RenderedFile("variables.tf.json", _dump({"variable": variables}), "application/json"))
    return Rendered(FORMAT, tuple(files), tuple(skipped))
