"""First-boot set-up of a virtual machine through cloud-init user data (EC2, Lambda).

VM providers boot a machine image, not a container: a line's container image runs there through
cloud-init (Docker, ports published, environment set), and where the provider has no key registry
of its own in use the line's SSH public key is installed for the image's default user. Values are
quoted for the shell and for YAML; the user data is the user's own and is never logged.
"""

from __future__ import annotations

import shlex

from cloudarb.deploy.providers.base import LaunchSpec


def is_container_image(image: str) -> bool:
    """A container reference (``repo/name:tag``, ``name@sha256:...``) rather than a machine image
    (``ami-...`` on EC2; ``family:<name>``, ``id:<id>`` or a bare family name on Lambda)."""
    if not image or image.startswith(("ami-", "id:", "family:")):
        return False
    return "/" in image or ":" in image or "@" in image


def docker_run(spec: LaunchSpec) -> str:
    """The shell command that starts ``spec.image`` with its GPUs, ports and environment."""
    args = ["docker", "run", "-d", "--restart", "unless-stopped", "--name", "cloudarb-workload"]
    if spec.gpu_count > 0:
        args += ["--gpus", "all"]
    for port in spec.ports:
        args += ["-p", f"{int(port)}:{int(port)}"]
    for name, value in sorted(spec.env.items()):
        args += ["-e", f"{name}={value}"]
    args.append(spec.image)
    return " ".join(shlex.quote(a) for a in args)


def user_data(spec: LaunchSpec, *, ssh: bool) -> str | None:
    """A ``#cloud-config`` document, or None when there is nothing to set up."""
    lines: list[str] = []
    public = (spec.ssh_public_key or "").strip()
    if ssh and public:
        lines += ["ssh_authorized_keys:", "  - " + _yaml_scalar(public)]
    if is_container_image(spec.image):
        lines += ["runcmd:", "  - " + _yaml_scalar(docker_run(spec))]
    if not lines:
        return None
    return "#cloud-config\n" + "\n".join(lines) + "\n"


def _yaml_scalar(text: str) -> str:
    """A double-quoted YAML scalar (backslashes, quotes and line breaks escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'
