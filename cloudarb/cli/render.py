"""Rich rendering of offers, optimization results and jobs for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from ingestion.catalog_result import CatalogLoad


def _console(stderr: bool = False) -> Console:
    """Wide output when piped (a log or CI), the terminal's width otherwise."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=160)


console = _console()
err_console = _console(stderr=True)


def money(v: float | None, unit: str = "/h") -> str:
    return "-" if v is None else f"${v:,.2f}{unit}"


def age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.0f}h" if hours < 48 else f"{hours / 24:.0f}d"


def stale_warning(message: str | None) -> None:
    """Say plainly, on stderr, that prices are old (the data on stdout stays parseable)."""
    if message:
        err_console.print(f"[yellow]warning:[/yellow] {escape(message)}")


def _provider(o: dict[str, Any]) -> str:
    return f"{o['provider']}:{o['seller']}" if o.get("seller") else o["provider"]


def offers_table(items: list[dict[str, Any]], total: int) -> Table:
    t = Table(title=f"{len(items)} of {total} offers", title_justify="left")
    for col in ("provider", "region", "instance", "GPU", "n", "VRAM", "spot", "$/h", "$/GPU-h", "age"):
        t.add_column(col, justify="right" if col in ("n", "VRAM", "$/h", "$/GPU-h", "age") else "left")
    for o in items:
        t.add_row(_provider(o), o["region"], o["instance_type"], o["gpu_model"], str(o["gpu_count"]),
                  f"{o['vram_gb']:.0f}G", "spot" if o["spot"] else "", f"{o['price_per_hour']:.3f}",
                  f"{o['price_per_gpu_hour']:.3f}", age(o["age_s"]))
    return t


def gpus_table(items: list[dict[str, Any]]) -> Table:
    t = Table(title=f"{len(items)} GPU models", title_justify="left")
    for col in ("GPU", "memory", "form", "providers", "on-demand $/GPU-h", "spot $/GPU-h", "price age"):
        t.add_column(col, justify="right" if "$" in col or col in ("memory", "price age") else "left")
    for g in items:
        od, sp = g.get("on_demand"), g.get("spot")
        ages = [p["age_s"] for p in (od, sp) if p]
        t.add_row(
            g["name"], f"{g['memory_gb']:g} GB", g["form_factor"], ", ".join(g["providers"]) or "-",
            f"{od['price_per_gpu_hour']:.3f} ({od['provider']})" if od else "-",
            f"{sp['price_per_gpu_hour']:.3f} ({sp['provider']})" if sp else "-",
            age(min(ages)) if ages else "-",
        )
    return t


def offer_line(q: dict[str, Any]) -> dict[str, Any]:
    """What `cloudarb catalog import` shows of one offer."""
    return {
        "provider": q["provider"], "seller": q.get("seller", ""), "gpu_model": q["gpu_model"],
        "gpu_model_raw": q.get("gpu_model_raw", ""), "gpus_per_instance": q["gpu_count"],
        "memory_gb_per_gpu": q["vram_gb"], "price_per_hour": q["price_per_hour"],
        "price_per_gpu_hour": round(q["price_per_hour"] / q["gpu_count"], 6), "spot": q["spot"],
        "region": q["region"], "zone": q["zone"], "instance_type": q["instance_type"],
        "observed_at": q["observed_at"],
    }


def catalog_import(loaded: CatalogLoad, *, stored: int, dry_run: bool, limit: int) -> None:
    shown = loaded.offers if limit <= 0 else loaded.offers[:limit]
    verb = "would store" if dry_run else "stored"
    t = Table(title=f"{len(loaded.offers)} offers {verb}" + (f" (first {len(shown)})" if len(shown) < len(
        loaded.offers) else ""), title_justify="left")
    for col in ("GPU", "n", "GB/GPU", "$/h", "$/GPU-h", "spot", "region", "zone", "seller", "instance"):
        t.add_column(col, justify="right" if col in ("n", "GB/GPU", "$/h", "$/GPU-h") else "left")
    for q in shown:
        t.add_row(q.gpu_model, str(q.gpu_count), f"{q.vram_gb:g}", f"{q.price_per_hour:.4f}",
                  f"{q.price_per_gpu_hour:.4f}", "spot" if q.spot else "", q.region, q.zone, q.seller,
                  escape(q.instance_type))
    console.print(t)
    if loaded.quarantined:
        qt = Table(title=f"{len(loaded.quarantined)} rows quarantined", title_justify="left")
        for col in ("line", "reason", "detail"):
            qt.add_column(col)
        for row in loaded.quarantined:
            qt.add_row(str(row.line), row.reason, escape(row.detail))
        console.print(qt)
    summary = loaded.summary()
    reasons = "; ".join(f"{k}: {v}" for k, v in sorted(summary["quarantined_by_reason"].items())) or "none"
    console.print(
        f"{summary['rows_read']} rows read; {summary['offers']} offers ({summary['on_demand_offers']} on-demand, "
        f"{summary['spot_offers']} spot) {verb if dry_run else f'{verb}: {stored}'}; "
        f"{summary['quarantined_rows']} quarantined ({reasons})"
    )


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
        launch = any(a.get("launch_success_probability") is not None and a["launch_success_probability"] < 1.0
                     for a in allocations)
        t = Table(title="Allocation", title_justify="left")
        for col in ("workload", "provider", "region", "instance", "GPU", "inst.", "GPUs", "spot", "$/h"):
            t.add_column(col, justify="right" if col in ("inst.", "GPUs", "$/h") else "left")
        if launch:
            t.add_column("launch ok", justify="right")
        for a in allocations:
            p = a.get("launch_success_probability")
            t.add_row(a["workload_id"], a["provider"], a["region"], a["instance_type"], a["gpu_model"],
                      str(a["instances"]), str(a["gpus"]), "spot" if a["spot"] else "", f"{a['hourly_cost']:.2f}",
                      *([f"{p:.0%}" if p is not None else ""] if launch else []))
        console.print(t)
    totals = res.get("totals") or {}
    if totals:
        console.print(
            f"Total: {money(totals.get('cost_per_hour'))} for {totals.get('gpus')} GPUs; "
            f"{money(totals.get('cost_over_horizon'), '')} over the horizon"
        )
    for s in res.get("savings") or []:
        if s.get("baseline_cost_per_hour") is None:
            console.print(f"Savings vs {s['baseline']}: baseline cannot serve this fleet"
                          + (f" ({escape(s['note'])})" if s.get("note") else ""))
        elif s.get("savings_per_hour") is None:
            names = ", ".join(s.get("violated") or []) or "a hard constraint"
            console.print(f"Savings vs {s['baseline']}: none stated; its plan at "
                          f"{money(s.get('baseline_cost_per_hour'))} breaks {names}")
        else:
            broken = s.get("violated") or []
            caveat = f"; its plan breaks {', '.join(broken)}" if broken else ""
            console.print(
                f"Savings vs {s['baseline']}: {money(s.get('savings_per_hour'))} "
                f"({(s.get('savings_pct') or 0):.1f}%) against {money(s.get('baseline_cost_per_hour'))}{caveat}"
            )
    fronts = res.get("fronts") or {}
    for axis, label in (("cost_risk", "risk"), ("cost_performance", "performance")):
        points = fronts.get(axis) or []
        key = "performance" if label == "performance" else "risk_per_hour"
        if points:
            pairs = ", ".join(f"${p['cost_per_hour']:,.2f}/h -> {p[key]:.2f}" for p in points)
            console.print(f"Pareto front cost/{label}: {pairs}")
    stats = res.get("stats") or {}
    if stats:
        gap = stats.get("gap")
        console.print(
            f"Solver: {stats.get('backend')} {stats.get('status')}, gap "
            f"{'-' if gap is None else f'{gap * 100:.3f}%'}, build {stats.get('build_seconds', 0):.2f}s, "
            f"solve {stats.get('solve_seconds', 0):.2f}s; {res.get('offers_considered', '?')} offers considered, "
            f"prices as of {res.get('prices_as_of') or '?'}"
        )
    stale_warning(res.get("stale_prices"))


def jobs_table(items: list[dict[str, Any]]) -> Table:
    t = Table(title="Jobs", title_justify="left")
    for col in ("id", "kind", "status", "attempts", "created", "error"):
        t.add_column(col)
    for j in items:
        t.add_row(j["id"], j["kind"], j["status"], f"{j['attempts']}/{j['max_attempts']}",
                  str(j["created_at"])[:19], (j.get("error") or "")[:60])
    return t
