"""Options and helpers shared by the command modules."""

from __future__ import annotations

from typing import Annotated

import typer

from cloudarb.cli.render import err_console

ServerOpt = Annotated[str | None, typer.Option("--server", envvar="CLOUDARB_SERVER", help="API base URL.")]
KeyOpt = Annotated[str | None, typer.Option("--api-key", envvar="CLOUDARB_API_KEY", help="API key for --server.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)
