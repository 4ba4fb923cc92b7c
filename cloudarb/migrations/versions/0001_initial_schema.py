"""Initial schema: tenants and auth, offers and price ticks, optimizations, jobs, policies, audit.

On PostgreSQL with the timescaledb extension available, price_ticks becomes a hypertable;
without it, it stays a plain table with its time index.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 13:24:37.678823
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cloudarb.db.types
from cloudarb.db.migrate import TIMESCALEDB_NOT_PRELOADED, timescaledb_not_preloaded, timescaledb_usable

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=True),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('resource_type', sa.String(length=40), nullable=False),
    sa.Column('resource_id', sa.String(length=200), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_organization_id'), ['organization_id'], unique=False)

    op.create_table('offers',
    sa.Column('offer_key', sa.String(length=32), nullable=False),
    sa.Column('provider', sa.String(length=40), nullable=False),
    sa.Column('region', sa.String(length=120), nullable=False),
    sa.Column('zone', sa.String(length=120), nullable=False),
    sa.Column('instance_type', sa.String(length=200), nullable=False),
    sa.Column('gpu_model', sa.String(length=80), nullable=False),
    sa.Column('gpu_model_raw', sa.String(length=200), nullable=False),
    sa.Column('gpu_model_known', sa.Boolean(), nullable=False),
    sa.Column('gpu_count', sa.Integer(), nullable=False),
    sa.Column('vram_gb', sa.Float(), nullable=False),
    sa.Column('vcpus', sa.Float(), nullable=True),
    sa.Column('ram_gb', sa.Float(), nullable=True),
    sa.Column('spot', sa.Boolean(), nullable=False),
    sa.Column('price_per_hour', sa.Float(), nullable=False),
    sa.Column('price_per_gpu_hour', sa.Float(), nullable=False),
    sa.Column('capacity', sa.String(length=20), nullable=False),
    sa.Column('available_instances', sa.Integer(), nullable=True),
    sa.Column('reliability', sa.Float(), nullable=True),
    sa.Column('interruption_rate_per_hour', sa.Float(), nullable=True),
    sa.Column('observed_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('first_seen_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('offer_key')
    )
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offers_gpu_model'), ['gpu_model'], unique=False)
        batch_op.create_index(batch_op.f('ix_offers_observed_at'), ['observed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_offers_price_per_gpu_hour'), ['price_per_gpu_hour'], unique=False)
        batch_op.create_index(batch_op.f('ix_offers_provider'), ['provider'], unique=False)

    op.create_table('organizations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('price_ticks',
    sa.Column('offer_key', sa.String(length=32), nullable=False),
    sa.Column('observed_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('price_per_hour', sa.Float(), nullable=False),
    sa.Column('available_instances', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('offer_key', 'observed_at')
    )
    with op.batch_alter_table('price_ticks', schema=None) as batch_op:
        batch_op.create_index('ix_price_ticks_observed_at', ['observed_at'], unique=False)

    op.create_table('api_keys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_organization_id'), ['organization_id'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organization_id', 'key')
    )
    op.create_table('job_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('function', sa.String(length=200), nullable=False),
    sa.Column('target_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_runs_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_runs_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_runs_status'), ['status'], unique=False)

    op.create_table('optimization_requests',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('request', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=True),
    sa.Column('policy_id', sa.String(length=32), nullable=True),
    sa.Column('created_by', sa.String(length=320), nullable=True),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('optimization_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_optimization_requests_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_optimization_requests_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_optimization_requests_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_optimization_requests_status'), ['status'], unique=False)

    op.create_table('policies',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('request', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('cron', sa.String(length=120), nullable=True),
    sa.Column('interval_s', sa.Integer(), nullable=True),
    sa.Column('keep_threshold_pct', sa.Float(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('next_run_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('current_optimization_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policies_next_run_at'), ['next_run_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_policies_organization_id'), ['organization_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_organization_id'), ['organization_id'], unique=False)

    op.create_table('allocation_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('optimization_id', sa.String(length=32), nullable=False),
    sa.Column('workload_id', sa.String(length=200), nullable=False),
    sa.Column('offer_key', sa.String(length=200), nullable=False),
    sa.Column('provider', sa.String(length=40), nullable=False),
    sa.Column('region', sa.String(length=120), nullable=False),
    sa.Column('instance_type', sa.String(length=200), nullable=False),
    sa.Column('gpu_model', sa.String(length=80), nullable=False),
    sa.Column('instances', sa.Integer(), nullable=False),
    sa.Column('gpus', sa.Integer(), nullable=False),
    sa.Column('hourly_cost', sa.Float(), nullable=False),
    sa.Column('spot', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['optimization_id'], ['optimization_requests.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('allocation_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_allocation_lines_optimization_id'), ['optimization_id'], unique=False)

    op.create_table('job_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job_runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id', 'seq', name='uq_job_events_job_seq')
    )
    op.create_table('optimization_results',
    sa.Column('optimization_id', sa.String(length=32), nullable=False),
    sa.Column('solver_status', sa.String(length=20), nullable=False),
    sa.Column('cost_per_hour', sa.Float(), nullable=True),
    sa.Column('gpus', sa.Integer(), nullable=True),
    sa.Column('solve_seconds', sa.Float(), nullable=False),
    sa.Column('summary', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('infeasibility_reason', sa.Text(), nullable=True),
    sa.Column('offers_considered', sa.Integer(), nullable=False),
    sa.Column('prices_as_of', cloudarb.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['optimization_id'], ['optimization_requests.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('optimization_id')
    )
    op.create_table('policy_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('policy_id', sa.String(length=32), nullable=False),
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('optimization_id', sa.String(length=32), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('current_cost_per_hour', sa.Float(), nullable=True),
    sa.Column('new_cost_per_hour', sa.Float(), nullable=True),
    sa.Column('savings_pct', sa.Float(), nullable=True),
    sa.Column('created_at', cloudarb.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['optimization_id'], ['optimization_requests.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['policy_id'], ['policies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('policy_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_runs_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_policy_runs_policy_id'), ['policy_id'], unique=False)
    _make_price_ticks_hypertable()


def _make_price_ticks_hypertable() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if timescaledb_not_preloaded(bind):
        # CREATE EXTENSION would fail ("must be loaded via shared_preload_libraries"): keep plain tables
        logging.getLogger("alembic.runtime.migration").warning(TIMESCALEDB_NOT_PRELOADED)
        return
    if not timescaledb_usable(bind):
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    op.execute(
        "SELECT create_hypertable('price_ticks', 'observed_at', "
        "chunk_time_interval => INTERVAL '1 day', migrate_data => true)"
    )


def downgrade() -> None:

    with op.batch_alter_table('policy_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_runs_policy_id'))
        batch_op.drop_index(batch_op.f('ix_policy_runs_organization_id'))

    op.drop_table('policy_runs')
    op.drop_table('optimization_results')
    op.drop_table('job_events')
    with op.batch_alter_table('allocation_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_allocation_lines_optimization_id'))

    op.drop_table('allocation_lines')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_organization_id'))

    op.drop_table('users')
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policies_organization_id'))
        batch_op.drop_index(batch_op.f('ix_policies_next_run_at'))

    op.drop_table('policies')
    with op.batch_alter_table('optimization_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_optimization_requests_status'))
        batch_op.drop_index(batch_op.f('ix_optimization_requests_policy_id'))
        batch_op.drop_index(batch_op.f('ix_optimization_requests_organization_id'))
        batch_op.drop_index(batch_op.f('ix_optimization_requests_created_at'))

    op.drop_table('optimization_requests')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_runs_status'))
        batch_op.drop_index(batch_op.f('ix_job_runs_organization_id'))
        batch_op.drop_index(batch_op.f('ix_job_runs_created_at'))

    op.drop_table('job_runs')
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_organization_id'))

    op.drop_table('api_keys')
    with op.batch_alter_table('price_ticks', schema=None) as batch_op:
        batch_op.drop_index('ix_price_ticks_observed_at')

    op.drop_table('price_ticks')
    op.drop_table('organizations')
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offers_provider'))
        batch_op.drop_index(batch_op.f('ix_offers_price_per_gpu_hour'))
        batch_op.drop_index(batch_op.f('ix_offers_observed_at'))
        batch_op.drop_index(batch_op.f('ix_offers_gpu_model'))

    op.drop_table('offers')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_organization_id'))

    op.drop_table('audit_log')

