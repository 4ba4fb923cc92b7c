"""A live progress bar fed by job events (from a WebSocket or from the local store)."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cloudarb.cli.render import err_console


class JobProgress:
    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.fields[phase]:<10}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}"),
            console=err_console,
            transient=False,
        )
        self.task = self.bar.add_task("job", total=100, phase="queued", detail="")

    def __enter__(self) -> JobProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def update(self, event: dict[str, Any]) -> None:
        if event.get("type") == "status":
            detail = event.get("message", "")
            done = 100 if event.get("terminal") else None
            self.bar.update(self.task, phase=event.get("status", ""), detail=detail, completed=done)
            return
        parts = [event.get("message") or ""]
        if event.get("gap") is not None:
            parts.append(f"gap {event['gap'] * 100:.2f}%")
        if event.get("incumbent") is not None:
            parts.append(f"best {event['incumbent']:.2f}")
        pct = event.get("percent")
        self.bar.update(self.task, phase=event.get("phase", ""), detail="  ".join(p for p in parts if p),
                        completed=pct if pct is not None else None)
