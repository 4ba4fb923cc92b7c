"""A fake ``nvidia-smi`` that replays a recorded capture of ../shared/data/nvidia-smi (stdlib only).

Run as a program (a shell wrapper on PATH execs it) with the environment:
- ``FAKE_NVSMI_CAPTURE``: the capture file; ``FAKE_NVSMI_PHASE``: ``idle`` (default) or ``load``;
- ``FAKE_NVSMI_COPIES``: present the capture's GPU as N GPUs (index and UUID made distinct);
- ``FAKE_NVSMI_CRLF``: ``1`` to answer with Windows line endings (default for windows-* captures).

It answers ``--query-gpu=<fields> --format=csv[,noheader][,nounits]`` by picking the requested
columns out of the capture's full CSV (header units and value units kept or dropped as asked),
``-L``, ``--version``, ``-q`` and the plain summary table; anything else exits 2 like the real tool.
Imported as a module, ``sections`` splits a capture into its titled parts for tests.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from pathlib import Path

_BAR = "#" * 80
_UNIT = re.compile(r"^(-?\d+(?:\.\d+)?) [A-Za-z%]+$")


def sections(text: str) -> dict[str, str]:
    """Section title ('idle :: query-gpu (csv, ...)') -> its body, from a capture file."""
    lines = text.splitlines()
    found: dict[str, str] = {}
    i = 0
    while i < len(lines):
        if lines[i] == _BAR and i + 1 < len(lines) and " :: " in lines[i + 1]:
            title = lines[i + 1].lstrip("# ").strip()
            j = i + 2
            while j < len(lines) and lines[j] != _BAR:
                j += 1
            k = j + 1
            while k < len(lines) and lines[k] != _BAR:
                k += 1
            body = "\n".join(lines[j + 1:k]).strip("\n")
            found[title] = body + "\n"
            i = k
        else:
            i += 1
    return found


def section(parts: dict[str, str], prefix: str) -> str:
    for title, body in parts.items():
        if title.startswith(prefix):
            return body
    raise KeyError(prefix)


def _copies(rows: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for n in range(count):
        for row in rows:
            copy = dict(row)
            copy["index"] = str(n)
            copy["uuid"] = row["uuid"][:-2] + f"{n:02d}"
            out.append(copy)
    return out


def query(parts: dict[str, str], phase: str, fields: list[str], fmt: set[str], count: int) -> str:
    body = section(parts, f"{phase} :: query-gpu")
    rows = list(csv.reader(io.StringIO(body), skipinitialspace=True))
    header = rows[0]
    names = [cell.split(" [")[0] for cell in header]
    records = _copies([dict(zip(names, row, strict=True)) for row in rows[1:]], count)
    units = {name: cell for name, cell in zip(names, header, strict=True)}
    for field in fields:
        if field not in units:
            sys.stdout.write(f'Field "{field}" is not a valid field to query.\n\n')
            raise SystemExit(2)
    lines: list[str] = []
    if "noheader" not in fmt:
        lines.append(", ".join(units[f] if "nounits" not in fmt else f for f in fields))
    for record in records:
        values = [record[f] for f in fields]
        if "nounits" in fmt:
            values = [_UNIT.sub(r"\1", v) for v in values]
        lines.append(", ".join(values))
    return "\n".join(lines) + "\n"


def listing(parts: dict[str, str], count: int) -> str:
    body = section(parts, "capabilities :: list (-L)").rstrip("\n")
    out = []
    for n in range(count):
        text = re.sub(r"^GPU 0:", f"GPU {n}:", body)
        text = re.sub(r"(GPU-[0-9a-f-]+?)\d\d\)", rf"\g<1>{n:02d})", text)
        text = re.sub(r"MIG-([0-9a-f]{8})-[0-9a-f]{4}-", rf"MIG-\g<1>-{n:04d}-", text)
        out.append(text)
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    capture = Path(os.environ["FAKE_NVSMI_CAPTURE"])
    parts = sections(capture.read_text())
    phase = os.environ.get("FAKE_NVSMI_PHASE", "idle")
    count = int(os.environ.get("FAKE_NVSMI_COPIES", "1"))
    crlf = os.environ.get("FAKE_NVSMI_CRLF", "1" if capture.name.startswith("windows") else "0") == "1"
    query_arg = next((a for a in argv if a.startswith("--query-gpu=")), None)
    format_arg = next((a for a in argv if a.startswith("--format=")), "--format=csv")
    if query_arg:
        out = query(parts, phase, query_arg.split("=", 1)[1].split(","), set(format_arg[9:].split(",")), count)
    elif argv in (["-L"], ["--list-gpus"]):
        out = listing(parts, count)
    elif argv == ["--version"]:
        out = section(parts, "capabilities :: version")
    elif argv == ["-q"]:
        out = section(parts, f"{phase} :: query (-q)")
    elif argv == []:
        out = section(parts, f"{phase} :: nvidia-smi (default table)")
    else:
        sys.stdout.write(f"Invalid combination of input arguments: {' '.join(argv)}\n")
        return 2
    sys.stdout.buffer.write((out.replace("\n", "\r\n") if crlf else out).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
