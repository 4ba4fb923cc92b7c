"""`cloudarb hooks`: list, add, remove and test an organization's hooks; read the delivery log."""

from __future__ import annotations

import json
import shlex
from typing import Annotated, Any

import typer
from rich.table import Table

from cloudarb.cli.options import JsonOpt, KeyOpt, ServerOpt, fail
from cloudarb.cli.render import console

hooks_app = typer.Typer(help="Webhooks and commands called on deploy, extend, done, destroy, budget and policy events.",
                        no_args_is_help=True)


def _remote(server: str, api_key: str | None, method: str, path: str, **kwargs: Any) -> Any:
    from cloudarb.cli.remote import Client, RemoteError

    try:
        return Client(server, api_key=api_key).request(method, path, **kwargs)
    except RemoteError as exc:
        raise fail(str(exc)) from exc


def _context() -> Any:
    from cloudarb.config import get_settings
    from cloudarb.context import build_context

    return build_context(get_settings())


def _hook_row(h: dict[str, Any]) -> list[str]:
    target = h["url"] if h["kind"] == "webhook" else " ".join(shlex.quote(a) for a in h["command"] or [])
    return [h["id"], h["name"], h["kind"], target, ",".join(h["events"]), h["payload_format"],
            "yes" if h["enabled"] else "no"]


@hooks_app.command("list")
def list_hooks(server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The organization's hooks."""
    if server:
        items = _remote(server, api_key, "GET", "/hooks")
    else:
        from cloudarb.cli.local import local_org
        from cloudarb.hooks import store
        from cloudarb.hooks.schemas import HookOut

        ctx = _context()
        try:
            org = local_org(ctx)
            with ctx.db.session() as session:
                items = [HookOut.model_validate(h).model_dump(mode="json")
                         for h in store.list_hooks(session, organization_id=org)]
        finally:
            ctx.close()
    if as_json:
        console.print_json(json.dumps(items))
        return
    table = Table("id", "name", "kind", "target", "events", "format", "enabled")
    for h in items:
        table.add_row(*_hook_row(h))
    console.print(table)


@hooks_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the hook.")],
    event: Annotated[list[str], typer.Option("--event", "-e", help="Event, '<group>.*' or '*' (repeatable); "
                                             "events: deploy|extend|done|destroy .before/.after, "
                                             "budget.threshold, policy.adopt; terraform.apply|destroy "
                                             "(commands that apply or destroy a --via terraform deploy).")],
    url: Annotated[str | None, typer.Option(help="Webhook URL (https).")] = None,
    command: Annotated[str | None, typer.Option(help="Command line to run (split like a shell, not run by one); "
                                                "the event's JSON comes on stdin.")] = None,
    payload_format: Annotated[str, typer.Option("--format", help="json, or slack for a Slack-compatible text.")] = "json",
    max_attempts: Annotated[int | None, typer.Option(min=1, max=20)] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per attempt.")] = None,
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a webhook (--url) or a command (--command); a webhook's signing secret is shown once."""
    from pydantic import ValidationError

    from cloudarb.hooks.schemas import HookCreate

    if (url is None) == (command is None):
        raise fail("give exactly one of --url or --command")
    try:
        body = HookCreate(name=name, kind="webhook" if url else "command", url=url,
                          command=shlex.split(command) if command else None, events=event,
                          payload_format=payload_format, max_attempts=max_attempts, timeout_s=timeout)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"{'.'.join(str(p) for p in first['loc']) or 'hook'}: {first['msg']}") from exc
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if server:
        created = _remote(server, api_key, "POST", "/hooks", json=body.model_dump(mode="json"))
    else:
        from cloudarb.cli.local import local_org
        from cloudarb.hooks import store
        from cloudarb.hooks.schemas import HookCreated, HookOut

        ctx = _context()
        try:
            org = local_org(ctx)
            with ctx.db.session() as session:
                hook = store.create(session, ctx.settings, organization_id=org, body=body, actor="cli")
                created = HookCreated.model_validate(
                    {**HookOut.model_validate(hook).model_dump(), "secret": hook.secret}).model_dump(mode="json")
        finally:
            ctx.close()
    if as_json:
        console.print_json(json.dumps(created))
        return
    console.print(f"hook {created['id']} ({created['kind']}) registered for {', '.join(created['events'])}",
                  highlight=False)
    if created.get("secret"):
        console.print(f"signing secret (shown once): {created['secret']}", highlight=False)


@hooks_app.command("remove")
def remove(hook_id: Annotated[str, typer.Argument()], server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """Remove a hook (its delivery log goes with it)."""
    if server:
        _remote(server, api_key, "DELETE", f"/hooks/{hook_id}")
    else:
        from cloudarb.cli.local import local_org
        from cloudarb.hooks import store

        ctx = _context()
        try:
            org = local_org(ctx)
            with ctx.db.session() as session:
                hook = store.get(session, organization_id=org, hook_id=hook_id)
                if hook is None:
                    raise fail(f"hook {hook_id} not found")
                store.delete(session, hook)
        finally:
            ctx.close()
    console.print(f"hook {hook_id} removed", highlight=False)


def _delivery_table(items: list[dict[str, Any]]) -> Table:
    table = Table("id", "hook", "event", "status", "attempts", "code/exit", "error", "created")
    for d in items:
        code = d["status_code"] if d["status_code"] is not None else d["exit_code"]
        table.add_row(d["id"], d["hook_id"], d["event"], d["status"], str(d["attempts"]),
                      "" if code is None else str(code), (d["error"] or "")[:60], d["created_at"][:19])
    return table


@hooks_app.command("test")
def test(hook_id: Annotated[str, typer.Argument()], server: ServerOpt = None, api_key: KeyOpt = None,
         as_json: JsonOpt = False) -> None:
    """Send a hook.test event to one hook and wait for the outcome (exit status 1 if it failed)."""
    if server:
        from cloudarb.cli.remote import Client, RemoteError

        client = Client(server, api_key=api_key)
        try:
            accepted = client.request("POST", f"/hooks/{hook_id}/test")
            client.ws_events(accepted["job_id"], lambda _event: None)
            delivery = client.request("GET", f"/hooks/deliveries/{accepted['delivery_id']}")
        except RemoteError as exc:
            raise fail(str(exc)) from exc
    else:
        from cloudarb.cli.local import local_org, relay
        from cloudarb.db.models_hooks import HookDelivery
        from cloudarb.hooks import store
        from cloudarb.hooks.dispatch import send_test
        from cloudarb.hooks.schemas import DeliveryOut

        ctx = _context()
        try:
            org = local_org(ctx)
            with ctx.db.session() as session:
                hook = store.get(session, organization_id=org, hook_id=hook_id)
            if hook is None:
                raise fail(f"hook {hook_id} not found")
            result = send_test(ctx, organization_id=org, hook=hook, actor="cli")
            relay(ctx, result.jobs[0], lambda _event: None)
            with ctx.db.session() as session:
                row = session.get(HookDelivery, result.deliveries[0])
                delivery = DeliveryOut.model_validate(row).model_dump(mode="json")
        finally:
            ctx.close()
    if as_json:
        console.print_json(json.dumps(delivery))
    else:
        console.print(_delivery_table([delivery]))
        if delivery.get("output"):
            console.print(delivery["output"], highlight=False, markup=False)
    if delivery["status"] != "delivered":
        raise typer.Exit(1)


@hooks_app.command("deliveries")
def deliveries(
    hook_id: Annotated[str | None, typer.Option("--hook", help="Only this hook's deliveries.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only those about this deployment or policy id.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, sending, retrying, delivered or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 25,
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The delivery log, newest first."""
    params: dict[str, Any] = {"limit": limit}
    for key, value in (("hook_id", hook_id), ("subject_id", subject), ("status", status)):
        if value:
            params[key] = value
    if server:
        page = _remote(server, api_key, "GET", "/hooks/deliveries", params=params)
    else:
        from cloudarb.cli.local import local_org
        from cloudarb.hooks import store
        from cloudarb.hooks.schemas import DeliveryOut

        ctx = _context()
        try:
            org = local_org(ctx)
            with ctx.db.session() as session:
                rows, total = store.deliveries(session, organization_id=org, hook_id=hook_id, subject_id=subject,
                                               status=status, limit=limit, offset=0)
                page = {"items": [DeliveryOut.model_validate(r).model_dump(mode="json") for r in rows],
                        "total": total}
        finally:
            ctx.close()
    if as_json:
        console.print_json(json.dumps(page))
        return
    console.print(_delivery_table(page["items"]))
