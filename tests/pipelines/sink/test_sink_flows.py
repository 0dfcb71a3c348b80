"""End to end against the real broker and the real ClickHouse engine: the simulator's events go
through Kafka and the sink into the tables, and the views give back exactly the ground truth."""

from __future__ import annotations

from pipelines.sink import totals
from tests.pipelines.sink.helpers import flow_events, instruction_record, ledger, statuses_for


def _counts(env) -> dict[str, int]:
    return {t: env.q(f"SELECT count() FROM {{db}}.{t} FINAL WHERE is_deleted = 0")[0][0]
            for t in ("usage_fees", "emissions", "other_flows", "instructions", "dead_letters")}


def test_ledger_events_match_ground_truth_and_replay_changes_nothing(sink_env):
    led = ledger()
    events = flow_events(led)
    truth = led.truth_lines()
    pub = sink_env.publisher
    pub.flows([e for e, _ in events])
    pub.instructions([instruction_record(e) for e, _ in events[:300]])
    pub.statuses(statuses_for(events))

    stats = sink_env.sink("g1").run_until_idle()
    assert stats.messages == pub.sent
    assert totals(sink_env.client, sink_env.database) == truth

    live = [e for e, forked in events if not forked]
    counts = _counts(sink_env)
    assert counts["usage_fees"] == sum(e.flow_class == "usage_fee" for e in live)
    assert counts["emissions"] == sum(e.flow_class == "emission" for e in live)
    assert counts["other_flows"] == sum(e.flow_class not in ("usage_fee", "emission") for e in live)
    assert counts["dead_letters"] == 0
    # every surviving event was promoted by its status; none is left at confirmed
    assert sink_env.q("SELECT commitment, count() FROM {db}.flows GROUP BY commitment") == [("finalized", len(live))]

    # replay both topics from offset 0 with a new group: every total and count stays the same
    again = sink_env.sink("g2").run_until_idle()
    assert again.messages == pub.sent
    assert totals(sink_env.client, sink_env.database) == truth
    assert _counts(sink_env) == counts


def test_two_group_members_split_the_work_and_totals_stay_exact(sink_env):
    import threading
    import time

    from tests.pipelines.sink.test_sink_faults import committed

    led = ledger()
    events = flow_events(led)
    pub = sink_env.publisher
    pub.flows([e for e, _ in events])
    pub.statuses(statuses_for(events))
    stop = threading.Event()
    sinks = [sink_env.sink("pair", batch_rows=400, client_id=f"member{i}") for i in range(2)]
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in sinks]
    for t in threads:
        t.start()
        time.sleep(2)                      # the second member joins later: a rebalance mid-stream
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and committed(sink_env, "pair", sink_env.topics.flows) != len(events):
        time.sleep(0.5)
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join(60)
    assert committed(sink_env, "pair", sink_env.topics.flows) == len(events)
    assert sum(s.stats.messages for s in sinks) >= pub.sent       # at least once, across the rebalance
    assert totals(sink_env.client, sink_env.database) == led.truth_lines()
