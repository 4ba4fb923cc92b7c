"""Start a line's container on a virtual machine at first boot (cloud-init user data).

VM providers (EC2, Lambda) boot a machine image, not a container; a line's container image runs
there through cloud-init, with its ports published and its environment set. Values are quoted for
the shell; the user data is the user's own (it is never logged by the modules).
"""

from __future__ import annotations

import shlex

from cloudarb.deploy.providers.base import LaunchSpec


def is_container_image(image: str) -> bool:
    """A container reference (``repo/name:tag``, ``name@sha256:...``) rather than a machine image."""
    return bool(image) and ("/" in image or ":" in image or "@" in image)


def container_user_data(spec: LaunchSpec, *, gpus: bool = True) -> str | None:
    """A ``#cloud-config`` that runs ``spec.image`` with Docker, or None when there is no container."""
    if not is_container_image(spec.image):
        return None
    args = ["docker", "run", "-d", "--restart", "unless-stopped", "--name", "cloudarb-workload"]
    if gpus and spec.gpu_count > 0:
        args += ["--gpus", "all"]
    for port in spec.ports:
        args += ["-p", f"{int(port)}:{int(port)}"]
    for name, value in sorted(spec.env.items()):
        args += ["-e", f"{name}={value}"]
    args.append(spec.image)
    command = " ".join(shlex.quote(a) for a in args)
    return "#cloud-config\nruncmd:\n  - " + _yaml_scalar(command) + "\n"


def _yaml_scalar(text: str) -> str:
    """A double-quoted YAML scalar (backslashes and quotes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
