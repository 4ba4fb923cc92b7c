"""The embedded fixtures of tests/cloudarb (a seeded SQLite copy per test, in-process jobs)."""

from tests.cloudarb.conftest import client, ctx, other_tenant, seeded_template, tenant  # noqa: F401
