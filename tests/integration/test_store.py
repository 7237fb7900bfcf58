"""The schema: migrations create exactly what the models describe, on PostgreSQL and SQLite,
and carry the rows of older schemas over."""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import JSON, column, insert, select, table, text, update
from sqlalchemy.exc import IntegrityError

from rollout.plan import Plan, PrometheusGateSpec
from rollout.plan.channels import EmailChannelSpec, SlackChannelSpec, WebhookChannelSpec
from rollout.plan.driver import (
    CommandDriverSpec,
    HttpDriverSpec,
    SimulatedDriverSpec,
)
from rollout.secrets import SecretRef
from rollout.store.database import alembic_config, engine_for, migrate, transaction
from rollout.store.models import Base, Delivery, DeliveryChannel, Release, Rollout, Upgrade
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration


def _drift(url: str) -> list[object]:
    with engine_for(url).connect() as connection:
        # The simulated fleet keeps its own tables beside ours in the test database.
        ours = {
            "include_name": lambda name, kind, _: kind != "table" or not name.startswith("sim_")
        }
        context = MigrationContext.configure(connection, opts=ours)
        return list(compare_metadata(context, Base.metadata))


def test_migrations_match_the_models_on_postgresql(postgres_url: str) -> None:
    assert _drift(postgres_url) == []


def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    migrate(url)
    migrate(url)  # a second upgrade is a no-op
    assert _drift(url) == []


# A plan as the first snapshots wrote it: no version, windows, requirements, air-gapped
# environments, operations or artifacts, and members without their contacts.
OLD_PLAN = {
    "stages": [
        {
            "name": "production",
            "soak_s": 0.0,
            "promote_share": 1.0,
            "parallelism": 2,
            "parallelism_percent": None,
            "severity": "P0",
        }
    ],
    "gates": [
        {
            "name": "errors",
            "type": "prometheus",
            "initial_delay_s": 0.0,
            "interval_s": 10.0,
            "failure_limit": 0,
            "inconclusive_limit": 0,
            "consecutive_error_limit": 4,
            "consecutive_successes": None,
            "dry_run": False,
            "count": 1,
            "url": "http://prometheus:9090",
            "query": "up",
            "success_condition": "value < 0.05",
            "failure_condition": None,
            "timeout_s": 10.0,
        }
    ],
    "environments": ["prod-1"],
    "paging": {
        "team": "payments",
        "members": [{"name": "Ada Park", "timezone": "Europe/Berlin"}],
        "rotations": None,
        "channels": [{"type": "webhook", "url": {"env": "PAGE_HOOK"}}],
    },
}
# The table as the migrations see it: the model's column would validate the plan.
_ROLLOUTS = table(
    "rollouts",
    *(column(name) for name in ("id", "release_id", "service", "version", "team", "state")),
    *(column(name) for name in ("stage_index", "created_at", "updated_at")),
    column("plan", JSON),
)


def _two_rollouts_of_one_service(url: str, first: str = "running") -> None:
    """Two running rollouts: what the submission race of 0009 and before could leave."""
    now = datetime.now(UTC)
    with engine_for(url).begin() as db:
        for n in (1, 2):
            db.execute(
                insert(Release).values(
                    id=n, service="checkout", version=f"2.0.{n}", state="active", submitted_at=now
                )
            )
            db.execute(
                insert(_ROLLOUTS).values(
                    id=n,
                    release_id=n,
                    service="checkout",
                    version=f"2.0.{n}",
                    team="payments",
                    state=first if n == 1 else "running",
                    stage_index=0,
                    plan=OLD_PLAN,
                    created_at=now.replace(tzinfo=None),
                    updated_at=now.replace(tzinfo=None),
                )
            )


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_migration_to_one_live_rollout_supersedes_all_but_the_newest(
    backend: str, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'rollout.db'}"
        else:
            url = stack.enter_context(fresh_database("rollout_migration_test"))
            command.downgrade(alembic_config(url), "0009")
        command.upgrade(alembic_config(url), "0009")
        _two_rollouts_of_one_service(url)
        migrate(url)
        with engine_for(url).connect() as db:
            rows = db.execute(select(Rollout.id, Rollout.state, Rollout.reason)).all()
        assert sorted(rows) == [
            (1, "superseding", "superseded by rollout 2 (one live rollout per service)"),
            (2, "running", None),
        ]
        with pytest.raises(IntegrityError), engine_for(url).begin() as db:
            db.execute(update(Rollout).where(Rollout.id == 1).values(state="paused"))
        engine_for(url).dispose()


def test_the_migration_to_structured_holds_keeps_who_waits_for_a_service(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    command.upgrade(alembic_config(url), "0010")
    _two_rollouts_of_one_service(url, first="superseding")
    now = datetime.now(UTC)
    waits = {
        1: "waits for billing-db >= 2.3 in prod-1 (installed 2.1)",
        2: "waiting for stage canary: 0 of 1 environments passed",
    }
    with engine_for(url).begin() as db:
        for n, reason in waits.items():
            db.execute(
                text(
                    "INSERT INTO upgrades (id, rollout_id, service, environment, stage_index,"
                    " stage, to_version, driver, state, hold_reason, claim, created_at)"
                    " VALUES (:n, 2, 'checkout', 'prod-1', 0, 'production', '2.0.2', '{}',"
                    " 'pending', :reason, 0, :now)"
                ),
                {"n": n, "reason": reason, "now": now.replace(tzinfo=None)},
            )
    migrate(url)
    with engine_for(url).connect() as db:
        rows = db.execute(select(Upgrade.id, Upgrade.hold_kind, Upgrade.hold_subject)).all()
    assert sorted(rows) == [(1, "dependency", "billing-db"), (2, None, None)]
    engine_for(url).dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_migration_to_plans_of_version_1_fills_what_old_snapshots_lack(
    backend: str, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'rollout.db'}"
        else:
            url = stack.enter_context(fresh_database("rollout_migration_test"))
            command.downgrade(alembic_config(url), "0011")
        command.upgrade(alembic_config(url), "0011")
        _two_rollouts_of_one_service(url, first="superseding")
        migrate(url)
        with engine_for(url).connect() as db:
            plans = db.scalars(select(Rollout.plan).order_by(Rollout.id)).all()
        engine_for(url).dispose()
    plan = Plan.model_validate(plans[0])
    assert plan.version == 1
    assert (plan.air_gapped, plan.operations, plan.artifacts, plan.requires) == ((), None, None, ())
    assert (plan.windows.service, plan.windows.environments) == ((), {})
    assert plan.paging.members[0].slack is None and plan.paging.escalation == ()
    (gate,) = plan.gates
    assert isinstance(gate, PrometheusGateSpec)
    assert (gate.value_name, gate.no_data, gate.nan) == ("value", "error", "error")
    # What the snapshot had stays as it was.
    assert plan.model_dump(mode="json")["stages"] == OLD_PLAN["stages"]
    assert plan.paging.channels == (WebhookChannelSpec(type="webhook", url=PAGE_HOOK),)


def test_the_migration_to_driver_specs_in_full_fills_what_old_specs_lack(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    command.upgrade(alembic_config(url), "0012")
    _two_rollouts_of_one_service(url, first="superseding")
    now = datetime.now(UTC).replace(tzinfo=None)
    old = {
        1: {"type": "simulated"},
        2: {"type": "command", "deploy": ["helm", "upgrade"], "timeout_s": 60.0},
        3: {"type": "http", "url": "http://agent:8480", "token": {"env": "AGENT_TOKEN"}},
    }
    with engine_for(url).begin() as db:
        for n, spec in old.items():
            db.execute(
                text(
                    "INSERT INTO upgrades (id, rollout_id, service, environment, stage_index,"
                    " stage, to_version, driver, state, claim, created_at)"
                    " VALUES (:n, 2, 'checkout', :env, 0, 'production', '2.0.2', :driver,"
                    " 'pending', 0, :now)"
                ),
                {"n": n, "env": f"prod-{n}", "driver": json.dumps(spec), "now": now},
            )
    migrate(url)
    with transaction(url) as session:
        simulated, command_, http = (
            u.driver for u in session.scalars(select(Upgrade).order_by(Upgrade.id))
        )
    engine_for(url).dispose()
    assert isinstance(simulated, SimulatedDriverSpec)
    assert simulated.poll_interval == timedelta(seconds=1)
    assert isinstance(command_, CommandDriverSpec)
    assert (command_.deploy, command_.timeout_s, command_.health_timeout_s) == (
        ("helm", "upgrade"),
        60.0,
        30.0,
    )
    assert isinstance(http, HttpDriverSpec)
    assert (http.mode, http.token, http.request_timeout_s) == (
        "push",
        SecretRef(env="AGENT_TOKEN"),
        10.0,
    )


PAGE_HOOK = SecretRef(env="PAGE_HOOK")


def _a_page(url: str) -> None:
    """A rollout with one upgrade and one page, for deliveries to belong to."""
    command.upgrade(alembic_config(url), "0011")  # the plans to be migrated to version 1
    _two_rollouts_of_one_service(url, first="superseding")
    migrate(url)
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine_for(url).begin() as db:
        db.execute(
            text(
                "INSERT INTO upgrades (id, rollout_id, service, environment, stage_index,"
                " stage, to_version, driver, state, claim, created_at)"
                " VALUES (1, 2, 'checkout', 'prod-1', 0, 'production', '2.0.2',"
                " '{\"type\": \"simulated\"}', 'failed', 0, :now)"
            ),
            {"now": now},
        )
        db.execute(
            text(
                "INSERT INTO pages (id, dedup_key, team, severity, kind, rollout_id, upgrade_id,"
                " service, version, environment, stage, detail, summary, state, created_at)"
                " VALUES (1, 'k', 'payments', 'P0', 'failure', 2, 1, 'checkout', '2.0.2',"
                " 'prod-1', 'production', 'd', 's', 'open', :now)"
            ),
            {"now": now},
        )


def test_channel_specs_of_rows_written_before_they_were_typed_read_typed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    _a_page(url)
    old = {
        "0:webhook": {"type": "webhook", "url": {"env": "HOOK"}, "timeout_s": 5,
                      "_recipient": "Ada"},
        "1:slack": {"type": "slack", "webhook_url": {"file": "/s"}, "_mention": "<@U1>",
                    "_recipient": None},
        # Written before the recipient was kept: the page's own is meant.
        "2:email": {"type": "email", "host": "m", "port": 25, "from": "r@x.io", "to": ["o@x.io"],
                    "timeout_s": 45},
    }  # fmt: skip
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine_for(url).begin() as db:
        # A plan of version 1 as submission wrote it before channels were typed.
        plan = db.scalar(select(_ROLLOUTS.c.plan).where(_ROLLOUTS.c.id == 2))
        plan["paging"]["channels"] = [
            {"type": "webhook", "url": {"env": "PAGE_HOOK"}, "timeout_s": 20}
        ]
        db.execute(update(_ROLLOUTS).where(_ROLLOUTS.c.id == 2).values(plan=plan))
        for channel, spec in old.items():
            db.execute(
                text(
                    "INSERT INTO deliveries (page_id, channel, channel_spec, action, state,"
                    " attempts, claim, created_at)"
                    " VALUES (1, :channel, :spec, 'trigger', 'pending', 0, 0, :now)"
                ),
                {"channel": channel, "spec": json.dumps(spec), "now": now},
            )
    with transaction(url) as session:
        sent = [d.channel_spec for d in session.scalars(select(Delivery).order_by(Delivery.id))]
        (channel,) = session.get_one(Rollout, 2).plan.paging.channels
    engine_for(url).dispose()
    assert channel == WebhookChannelSpec(
        type="webhook", url=PAGE_HOOK, timeout=timedelta(seconds=20)
    )
    webhook, slack, email = sent
    assert webhook == DeliveryChannel(
        spec=WebhookChannelSpec(
            type="webhook", url=SecretRef(env="HOOK"), timeout=timedelta(seconds=5)
        ),
        recipient="Ada",
    )
    assert slack is not None and isinstance(slack.spec, SlackChannelSpec)
    assert (slack.mention, slack.recipient, slack.recipient_kept) == ("<@U1>", None, True)
    assert email is not None and isinstance(email.spec, EmailChannelSpec)
    assert (email.spec.timeout, email.spec.recipients) == (timedelta(seconds=45), ("o@x.io",))
    assert (email.recipient, email.recipient_kept) == (None, False)


def test_a_delivery_stores_its_channel_as_rows_did_before_it_was_typed(tmp_path: Path) -> None:
    # The same JSON as before (`timeout_s`, no nulls): a worker not yet upgraded reads it.
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    _a_page(url)
    spec = EmailChannelSpec.model_validate(
        {"type": "email", "host": "m", "port": 25, "from": "r@x.io", "to": ["o@x.io"]}
    )
    with transaction(url) as session:
        session.add(
            Delivery(
                page_id=1,
                channel="0:email",
                channel_spec=DeliveryChannel(spec=spec, recipient="Ada"),
                action="trigger",
                state="pending",
                attempts=0,
                claim=0,
                created_at=datetime.now(UTC),
            )
        )
    with engine_for(url).connect() as db:
        stored = db.scalar(text("SELECT channel_spec FROM deliveries"))
    engine_for(url).dispose()
    assert json.loads(stored) == {
        "type": "email",
        "host": "m",
        "port": 25,
        "from": "r@x.io",
        "to": ["o@x.io"],
        "starttls": False,
        "timeout_s": 30.0,
        "_recipient": "Ada",
    }


def test_downgrading_the_audit_trail_leaves_older_code_no_state_it_does_not_know(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    command.upgrade(alembic_config(url), "0012")
    _two_rollouts_of_one_service(url, first="superseding")
    migrate(url)
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine_for(url).begin() as db:
        for n, state in ((1, "skipped"), (2, "succeeded")):
            db.execute(
                text(
                    "INSERT INTO upgrades (id, rollout_id, service, environment, stage_index,"
                    " stage, to_version, driver, state, claim, created_at)"
                    " VALUES (:n, 2, 'checkout', :env, 0, 'production', '2.0.2',"
                    ' \'{"type": "simulated"}\', :state, 0, :now)'
                ),
                {"n": n, "env": f"prod-{n}", "state": state, "now": now},
            )
        db.execute(
            text(
                "INSERT INTO events (at, actor, action, rollout_id, message)"
                " VALUES (:now, 'local:alice', 'skip', 2, 'rollout 2: prod-1 skipped: x')"
            ),
            {"now": now},
        )
    command.downgrade(alembic_config(url), "0013")
    with engine_for(url).begin() as db:
        states = db.execute(text("SELECT state FROM upgrades ORDER BY id")).scalars().all()
        tables = db.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).all()
    engine_for(url).dispose()
    assert states == ["cancelled", "succeeded"]
    assert ("events",) not in tables
    migrate(url)
    assert _drift(url) == []
