"""The materialized rollup (schemas/clickhouse/0007) through the real sink and broker: whether a day is
served from flows_daily_rollup (settled) or from FINAL (touched since), totals and invoice_daily are the
ground truth after a replay from offset 0, a crash between insert and commit, a retraction, a status
that arrives before its flow, and a re-inclusion after a fork."""

from __future__ import annotations

from decimal import Decimal

from pipelines.clickhouse.migrate import migrate
from pipelines.clickhouse.rollups import REFRESH_VIEW, refresh_rollups, rollup_state
from pipelines.sink import totals
from tests.pipelines.sink.helpers import flow_events, ledger, status_record, statuses_for
from tests.pipelines.sink.test_sink_faults import CrashBeforeCommit, CrashingSink, committed, event


def settle(env) -> None:
    """What the sink or `depinflow report` can call: every day the sink wrote is served from the rollup.
    Grace 0 is right here: every insert of the test has returned, nothing else writes."""
    state = refresh_rollups(env.client, env.database, grace_seconds=0)
    assert state.unsettled == 0 and state.days > 0, state


def stop_background_refresh(env) -> None:
    """Migrate first (the sink's own migrate is then a no-op) and pause the refreshable MV: it would
    settle days at moments of its own; these tests settle them explicitly."""
    migrate(env.client, env.database)
    env.client.command(f"SYSTEM STOP VIEW {env.database}.{REFRESH_VIEW}")


def invoice(env) -> list[tuple]:
    return env.q("SELECT * FROM {db}.invoice_daily ORDER BY network, day")


def test_replay_from_offset_zero_on_a_settled_rollup(sink_env):
    led = ledger()
    events = flow_events(led)
    truth = led.truth_lines()
    pub = sink_env.publisher
    pub.flows([e for e, _ in events])
    pub.statuses(statuses_for(events))
    stop_background_refresh(sink_env)
    sink_env.sink("g1").run_until_idle()
    assert totals(sink_env.client, sink_env.database) == truth          # read live (nothing settled yet)
    live_invoice = invoice(sink_env)
    settle(sink_env)
    assert totals(sink_env.client, sink_env.database) == truth          # read from the rollup
    assert invoice(sink_env) == live_invoice

    sink_env.sink("g2").run_until_idle()        # a new group: both topics again from offset 0
    assert rollup_state(sink_env.client, sink_env.database).unsettled > 0
    assert totals(sink_env.client, sink_env.database) == truth
    settle(sink_env)
    assert totals(sink_env.client, sink_env.database) == truth
    assert invoice(sink_env) == live_invoice


def test_crash_between_insert_and_commit_on_a_settled_rollup(sink_env):
    events = flow_events(ledger())[:600]
    sink_env.publisher.flows([e for e, _ in events])
    stop_background_refresh(sink_env)
    crashing = CrashingSink(sink_env.config("g", batch_rows=100_000, batch_seconds=5))
    try:
        crashing.run_until_idle()
        raise AssertionError("the sink should have crashed")
    except CrashBeforeCommit:
        pass
    finally:
        crashing.close()
    assert committed(sink_env, "g", sink_env.topics.flows) is None
    first, first_invoice = totals(sink_env.client, sink_env.database), invoice(sink_env)
    settle(sink_env)
    assert totals(sink_env.client, sink_env.database) == first

    sink_env.sink("g").run_until_idle()         # the restart inserts the same batch again
    assert committed(sink_env, "g", sink_env.topics.flows) == len(events)
    assert totals(sink_env.client, sink_env.database) == first
    settle(sink_env)
    assert totals(sink_env.client, sink_env.database) == first
    assert invoice(sink_env) == first_invoice


def test_retraction_status_first_and_reinclusion_on_a_settled_rollup(sink_env):
    pub = sink_env.publisher
    fee, kept = event("sigFee", amount=500_000), event("sigKept", amount=200_000)
    early = event("sigEarly", amount=7)
    pub.statuses([status_record("sigEarly", 100, "retracted", [early.event_id])])   # before its flow
    pub.flows([fee, kept])
    stop_background_refresh(sink_env)
    sink_env.sink("g").run_until_idle()
    settle(sink_env)
    usage = "SELECT usage_usd, events_by_class FROM {db}.invoice_daily"
    assert sink_env.q(usage) == [(Decimal("7"), {"usage_fee": 2})]

    pub.flows([early])                                      # the flow of the early retraction lands
    pub.statuses([status_record("sigFee", 100, "retracted", [fee.event_id])])
    sink_env.sink("g").run_until_idle()
    assert sink_env.q(usage) == [(Decimal("2"), {"usage_fee": 1})]     # gone at once, before any refresh
    settle(sink_env)
    assert sink_env.q(usage) == [(Decimal("2"), {"usage_fee": 1})]
    assert sink_env.q("SELECT amount_raw, events FROM {db}.usage_fees_daily") == [(200_000, 1)]

    pub.flows([event("sigFee", amount=500_000, slot=150)])  # re-included in a later slot after the fork
    sink_env.sink("g").run_until_idle()
    assert sink_env.q(usage) == [(Decimal("7"), {"usage_fee": 2})]
    settle(sink_env)
    assert sink_env.q(usage) == [(Decimal("7"), {"usage_fee": 2})]
