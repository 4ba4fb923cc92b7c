"""The deploy world (embedded context, fake clock, in-memory providers) for the fleet-evidence tests."""

from tests.cloudarb.conftest import client, ctx, other_tenant, seeded_template, tenant  # noqa: F401
from tests.deploy.conftest import world  # noqa: F401
