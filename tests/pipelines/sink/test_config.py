"""Settings precedence: defaults < TOML file < environment < explicit overrides."""

from __future__ import annotations

import pytest

from pipelines.sink.config import ConfigError, SinkConfig


def test_precedence(tmp_path):
    f = tmp_path / "sink.toml"
    f.write_text('[kafka]\nbootstrap = "file:9092"\ngroup_id = "from-file"\nconsumer = {fetch_max_wait_ms = 100}\n'
                 '[clickhouse]\ndsn = "http://u:p@ch:8123"\ndatabase = "filedb"\n'
                 '[sink]\nbatch_rows = 1000\nmigrate = false\n[metrics]\nport = 9464\n')
    env = {"DEPINFLOW_KAFKA_BOOTSTRAP": "env:9092", "DEPINFLOW_SINK_BATCH_SECONDS": "2.5",
           "DEPINFLOW_CLICKHOUSE_DATABASE": "envdb"}
    cfg = SinkConfig.load(f, env=env, database="flagdb", batch_rows=None)
    assert cfg.bootstrap == "env:9092"
    assert cfg.group_id == "from-file"
    assert cfg.clickhouse_dsn == "http://u:p@ch:8123"
    assert cfg.database == "flagdb"
    assert cfg.batch_rows == 1000 and cfg.batch_seconds == 2.5
    assert cfg.migrate is False and cfg.metrics_port == 9464
    assert cfg.consumer_overrides == {"fetch_max_wait_ms": 100}
    defaults = SinkConfig.load(env={})
    assert defaults.batch_rows == 50_000 and defaults.clickhouse_dsn.startswith("chdb://")


@pytest.mark.parametrize("text", ['[sink]\nbatch_size = 5\n', 'bootstrap = "x"\n', '[sink]\nbatch_rows = "many"\n'])
def test_bad_files_are_clear_errors(tmp_path, text):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError):
        SinkConfig.load(f, env={})


def test_bad_env_value_is_a_clear_error():
    with pytest.raises(ConfigError, match="batch_rows"):
        SinkConfig.load(env={"DEPINFLOW_SINK_BATCH_ROWS": "lots"})
