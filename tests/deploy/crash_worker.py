"""Runs one deploy or teardown in its own process for the crash tests (``CLOUDARB_DEPLOY_CRASH_AT``
names where it SIGKILLs itself): python -m tests.deploy.crash_worker DB_URL STATE_FILE DEPLOYMENT_ID ACTION."""

from __future__ import annotations

import sys
from pathlib import Path

from cloudarb.db.engine import Database
from cloudarb.deploy import run
from cloudarb.deploy.env import DeployEnv
from tests.deploy.file_provider import FileProvider
from tests.support import make_settings


def main(db_url: str, state: str, deployment_id: str, action: str) -> None:
    settings = make_settings(database_url=db_url, deploy_install_id="crashtst")
    provider = FileProvider(Path(state))
    env = DeployEnv(db=Database(db_url), settings=settings, providers=lambda p, a: provider,
                    probe=lambda host, port: True)
    if action == "deploy":
        run.deploy(env, deployment_id)
    else:
        run.teardown(env, deployment_id, reason="done")


if __name__ == "__main__":
    main(*sys.argv[1:5])
