"""Rich rendering of offers, optimization results and jobs for the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _console(stderr: bool = False) -> Console:
    """Wide output when piped (a log or CI), the terminal's width otherwise."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=160)


console = _console()
err_console = _console(stderr=True)


def money(v: float | None, unit: str = "/h") -> str:
    return "-" if v is None else f"${v:,.2f}{unit}"


def offers_table(items: list[dict[str, Any]], total: int) -> Table:
    t = Table(title=f"{len(items)} of {total} offers", title_justify="left")
    for col in ("provider", "region", "instance", "GPU", "n", "VRAM", "spot", "$/h", "$/GPU-h", "age"):
        t.add_column(col, justify="right" if col in ("n", "VRAM", "$/h", "$/GPU-h", "age") else "left")
    for o in items:
        age_h = o["age_s"] / 3600
        age = f"{age_h:.0f}h" if age_h < 48 else f"{age_h / 24:.0f}d"
        t.add_row(o["provider"], o["region"], o["instance_type"], o["gpu_model"], str(o["gpu_count"]),
                  f"{o['vram_gb']:.0f}G", "spot" if o["spot"] else "", f"{o['price_per_hour']:.3f}",
                  f"{o['price_per_gpu_hour']:.3f}", age)
    return t


def result(opt: dict[str, Any], allocations: list[dict[str, Any]]) -> None:
    status = opt["status"]
    res = opt.get("result") or {}
    console.print(f"[bold]Optimization {opt['id']}[/bold]  status: [bold]{status}[/bold]")
    if status == "failed":
        console.print(f"[red]error:[/red] {opt.get('error')}")
        return
    if res.get("infeasibility_reason"):
        console.print(f"[yellow]infeasible:[/yellow] {res['infeasibility_reason']}")
    if allocations:
        t = Table(title="Allocation", title_justify="left")
        for col in ("workload", "provider", "region", "instance", "GPU", "inst.", "GPUs", "spot", "$/h"):
            t.add_column(col, justify="right" if col in ("inst.", "GPUs", "$/h") else "left")
        for a in allocations:
            t.add_row(a["workload_id"], a["provider"], a["region"], a["instance_type"], a["gpu_model"],
                      str(a["instances"]), str(a["gpus"]), "spot" if a["spot"] else "", f"{a['hourly_cost']:.2f}")
        console.print(t)
    totals = res.get("totals") or {}
    if totals:
        console.print(
            f"Total: {money(totals.get('cost_per_hour'))} for {totals.get('gpus')} GPUs; "
            f"{money(totals.get('cost_over_horizon'), '')} over the horizon"
        )
    for s in res.get("savings") or []:
        if s.get("baseline_cost_per_hour") is None:
            console.print(f"Savings vs {s['baseline']}: baseline cannot serve this fleet")
        else:
            console.print(
                f"Savings vs {s['baseline']}: {money(s.get('savings_per_hour'))} "
                f"({(s.get('savings_pct') or 0):.1f}%) against {money(s.get('baseline_cost_per_hour'))}"
            )
    stats = res.get("stats") or {}
    if stats:
        gap = stats.get("gap")
        console.print(
            f"Solver: {stats.get('backend')} {stats.get('status')}, gap "
            f"{'-' if gap is None else f'{gap * 100:.3f}%'}, build {stats.get('build_seconds', 0):.2f}s, "
            f"solve {stats.get('solve_seconds', 0):.2f}s; {res.get('offers_considered', '?')} offers considered, "
            f"prices as of {res.get('prices_as_of') or '?'}"
        )


def jobs_table(items: list[dict[str, Any]]) -> Table:
    t = Table(title="Jobs", title_justify="left")
    for col in ("id", "kind", "status", "attempts", "created", "error"):
        t.add_column(col)
    for j in items:
        t.add_row(j["id"], j["kind"], j["status"], f"{j['attempts']}/{j['max_attempts']}",
                  str(j["created_at"])[:19], (j.get("error") or "")[:60])
    return t
