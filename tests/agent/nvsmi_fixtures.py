"""The recorded nvidia-smi captures and a fake ``nvidia-smi`` executable that replays one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

CAPTURES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nvidia-smi"
FAKE = Path(__file__).with_name("fake_nvidia_smi.py")


def capture_files() -> list[Path]:
    return sorted(CAPTURES_DIR.glob("*.txt"))


CAPTURES = capture_files()


def install_fake_nvidia_smi(bin_dir: Path, capture: Path, *, copies: int = 1, phase: str = "idle") -> Path:
    """Write ``bin_dir/nvidia-smi`` replaying ``capture``; returns its path (put bin_dir on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "nvidia-smi"
    exe.write_text(
        "#!/bin/sh\n"
        f"FAKE_NVSMI_CAPTURE='{capture}' FAKE_NVSMI_COPIES={copies} FAKE_NVSMI_PHASE={phase} "
        f"exec '{sys.executable}' '{FAKE}' \"$@\"\n"
    )
    exe.chmod(0o755)
    return exe


def path_with(bin_dir: Path) -> str:
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
