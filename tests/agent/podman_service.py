"""A private rootful Podman service for the engine tests (DEPLOY-NOTES 4.2).

Its own storage (``--root``/``--runroot``, vfs driver) under a temporary directory, a containers.conf
(``default_ulimits = []``, runtime runc), an image imported from a tiny root filesystem around the
host's static busybox, and a fake CDI spec (``/etc/cdi/cloudarb-test.yaml``: Podman 4.3 reads specs
only from /etc/cdi and /var/run/cdi) mapping ``nvidia.com/gpu=0..3`` (and MIG devices ``0:0..0:3``) to harmless host devices.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

IMAGE = "localhost/cloudarb-test:1"
CDI_SPEC = Path("/etc/cdi/cloudarb-test.yaml")
FAKE_GPUS = {0: "/dev/null", 1: "/dev/zero", 2: "/dev/full", 3: "/dev/urandom"}
APPLETS = ("sh", "sleep", "ls", "cat", "env", "nc", "httpd", "echo", "mkdir", "test", "[", "stat", "sed",
           "grep", "wc", "printf", "true", "touch", "id", "head", "readlink")
ROOT_PREFIX = "cloudarb-podman-"
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'


def cdi_spec() -> str:
    lines = ['cdiVersion: "0.5.0"', "kind: nvidia.com/gpu", "devices:"]
    for index, host_path in FAKE_GPUS.items():
        lines += [
            f'- name: "{index}"', "  containerEdits:", "    deviceNodes:",
            f"    - path: /dev/nvidia{index}", f"      hostPath: {host_path}",
            f'    env: ["NVIDIA_VISIBLE_DEVICES={index}"]',
        ]
    for mig in range(4):  # MIG devices of GPU 0, named "<gpu>:<mig>" as nvidia-ctk names them
        lines += [
            f'- name: "0:{mig}"', "  containerEdits:", "    deviceNodes:",
            "    - path: /dev/nvidia0", "      hostPath: /dev/null",
            f"    - path: /dev/nvidia-caps/nvidia-cap{mig + 1}", "      hostPath: /dev/null",
            f'    env: ["NVIDIA_VISIBLE_DEVICES=0:{mig}"]',
        ]
    return "\n".join(lines) + "\n"


@dataclass
class PodmanService:
    root: Path
    socket: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> list[str]:
        return ["podman", "--root", str(self.root / "root"), "--runroot", str(self.root / "run"),
                "--tmpdir", str(self.root / "tmp"), "--storage-driver", "vfs"]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.root / "containers.conf")}

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, *args], env=self.env, capture_output=True, text=True, check=False,
                              timeout=120)

    def stop(self) -> None:
        self.podman("rm", "-af", "-t", "0")
        self.podman("volume", "prune", "-f")
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
        # Another test session (tests/nodes uses these fixtures too) may still need the spec.
        others = list(self.root.parent.glob(f"{ROOT_PREFIX}*"))
        if not others and CDI_SPEC.exists() and CDI_SPEC.read_text() == cdi_spec():
            CDI_SPEC.unlink()


def _rootfs_tar(root: Path) -> Path:
    busybox = shutil.which("busybox") or "/bin/busybox"
    tree = root / "rootfs"
    for folder in ("bin", "dev", "proc", "sys", "tmp", "etc", "workspace", "www"):
        (tree / folder).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, tree / "bin" / "busybox")
    for applet in APPLETS:
        (tree / "bin" / applet).symlink_to("busybox")
    (tree / "www" / "index.html").write_text("cloudarb-test\n")
    tar_path = root / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(tree, arcname=".")
    return tar_path


def start_service() -> PodmanService:
    """Start the service and import the test image; the caller stops it."""
    if os.geteuid() != 0:
        raise RuntimeError("the engine tests run rootful Podman (as root)")
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir="/tmp"))
    (root / "containers.conf").write_text(CONTAINERS_CONF)
    CDI_SPEC.parent.mkdir(parents=True, exist_ok=True)
    if not CDI_SPEC.exists() or CDI_SPEC.read_text() != cdi_spec():
        tmp = CDI_SPEC.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(cdi_spec())
        tmp.replace(CDI_SPEC)  # atomic: a concurrent session never reads half a spec
    socket = str(root / "podman.sock")
    log = (root / "service.log").open("wb")
    service = PodmanService(root, socket)
    service.process = subprocess.Popen(
        [*service.base, "system", "service", "--time=0", f"unix://{socket}"],
        env=service.env, stdout=log, stderr=subprocess.STDOUT,
    )
    imported = service.podman("import", "--change", 'CMD ["/bin/sleep","3600"]', str(_rootfs_tar(root)), IMAGE)
    if imported.returncode != 0:
        service.stop()
        raise RuntimeError(f"podman import failed: {imported.stderr}")
    deadline = time.monotonic() + 30
    with httpx.Client(transport=httpx.HTTPTransport(uds=socket), timeout=5) as http:
        while True:
            try:
                if http.get("http://podman/v4.0.0/libpod/_ping").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or service.process.poll() is not None:
                service.stop()
                raise RuntimeError(f"podman service did not start: {(root / 'service.log').read_text()[-500:]}")
            time.sleep(0.2)
    return service
