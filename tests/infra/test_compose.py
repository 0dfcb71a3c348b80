"""The production compose file is valid (Debian's `docker-compose config`, no daemon needed) and wires
depinflow's own settings: every environment variable it sets is one the listener or sink reads, and
the values pass their config validation."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from pipelines.cli.main import COMMANDS
from pipelines.listen.config import ENV_VARS as LISTENER_ENV
from pipelines.listen.config import ListenerConfig
from pipelines.sink.config import ENV_VARS as SINK_ENV
from pipelines.sink.config import SinkConfig

INFRA = Path(__file__).resolve().parents[2] / "infra"
COMPOSE = INFRA / "docker-compose.yml"
APT_INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "docker-compose"]
REQUIRED = {"SOLANA_RPC_URL": "https://rpc.example.com/?api-key=k", "CLICKHOUSE_PASSWORD": "writerpw",
            "CLICKHOUSE_READER_PASSWORD": "readerpw"}


@pytest.fixture(scope="module")
def compose_bin() -> str:
    """Debian's docker-compose (installed with apt-get when missing, as CI does)."""
    found = shutil.which("docker-compose")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(APT_INSTALL, env=env, capture_output=True, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
            subprocess.run(APT_INSTALL, env=env, capture_output=True, timeout=600)
        found = shutil.which("docker-compose")
    assert found, f"docker-compose is required: {' '.join(APT_INSTALL)}"
    return found


def compose_config(compose_bin: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED and not k.startswith("DEPINFLOW_")}
    return subprocess.run([compose_bin, "-f", str(COMPOSE), *extra, "config"], env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def config(compose_bin) -> dict:
    out = compose_config(compose_bin, REQUIRED)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def test_compose_file_is_valid_with_the_services_production_needs(config):
    assert set(config["services"]) == {"kafka", "clickhouse", "migrate", "listener", "sink", "grafana"}
    assert config["services"]["grafana"]["profiles"] == ["grafana"]  # optional
    assert set(config["volumes"]) >= {"kafka-data", "clickhouse-data", "listener-state"}


def test_kafka_is_apache_kafka_in_kraft_mode(config):
    kafka = config["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert not any("zookeeper" in name or "ZOOKEEPER" in str(s) for name, s in config["services"].items())
    assert "kafka-data:/var/lib/kafka/data:rw" in kafka["volumes"]


def test_clickhouse_server_with_persistent_data_and_a_read_only_user(config):
    ch = config["services"]["clickhouse"]
    assert ch["image"].startswith("clickhouse/clickhouse-server:")
    assert ch["environment"]["CLICKHOUSE_PASSWORD"] == "writerpw"
    assert any(str(v).startswith("clickhouse-data:/var/lib/clickhouse") for v in ch["volumes"])
    users = ET.parse(INFRA / "production" / "clickhouse" / "users.d" / "reader.xml").getroot()
    assert users.find("users/reader/password").get("from_env") == "CLICKHOUSE_READER_PASSWORD"
    profile = users.find("users/reader/profile").text
    assert users.find(f"profiles/{profile}/readonly").text == "2"


def test_every_long_lived_service_has_a_health_check_and_restarts(config):
    for name, svc in config["services"].items():
        if name == "migrate":
            assert svc["restart"] == "no"  # one-shot
            continue
        assert svc["healthcheck"]["test"], name
        assert svc["restart"] == "unless-stopped", name


def test_listener_and_sink_run_depinflow_configured_by_environment(config):
    svcs = config["services"]
    for name, command in (("listener", "listen"), ("sink", "sink"), ("migrate", "migrate")):
        assert svcs[name]["command"] == [command] and command in COMMANDS
        assert svcs[name]["build"]["dockerfile"] == "infra/production/Dockerfile"
    listener_env = svcs["listener"]["environment"]
    sink_env = svcs["sink"]["environment"]
    assert set(listener_env) <= set(LISTENER_ENV), set(listener_env) - set(LISTENER_ENV)
    assert set(sink_env) <= set(SINK_ENV), set(sink_env) - set(SINK_ENV)
    assert set(svcs["migrate"]["environment"]) <= set(SINK_ENV)
    assert listener_env["SOLANA_RPC_URL"] == REQUIRED["SOLANA_RPC_URL"]
    assert listener_env["DEPINFLOW_KAFKA_BOOTSTRAP"] == sink_env["DEPINFLOW_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert sink_env["DEPINFLOW_CLICKHOUSE_DSN"] == "http://depinflow:writerpw@clickhouse:8123"
    # the values pass the services' own config validation
    lcfg = ListenerConfig.load(env={k: str(v) for k, v in listener_env.items()})
    assert (lcfg.rpc_url, lcfg.networks, lcfg.partitions) == (REQUIRED["SOLANA_RPC_URL"], ["helium", "render"], 6)
    assert lcfg.since is None and lcfg.ws_url is None  # empty optional values mean "not set"
    scfg = SinkConfig.load(env={k: str(v) for k, v in sink_env.items()})
    assert (scfg.database, scfg.cluster, scfg.migrate, scfg.metrics_port) == ("depinflow", None, False, 9465)
    # sinks start only after the one-shot migration succeeded and both servers are healthy
    assert svcs["sink"]["depends_on"] == {"kafka": {"condition": "service_healthy"},
                                          "clickhouse": {"condition": "service_healthy"},
                                          "migrate": {"condition": "service_completed_successfully"}}
    assert svcs["listener"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert any(str(v).startswith("listener-state:/var/lib/depinflow") for v in svcs["listener"]["volumes"])
    assert lcfg.checkpoint.startswith("/var/lib/depinflow/")


def test_published_ports_are_loopback_only(config):
    for name, svc in config["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_optional_settings_flow_through(compose_bin):
    out = compose_config(compose_bin, {**REQUIRED, "DEPINFLOW_SINCE": "2026-01-01",
                                       "DEPINFLOW_CLICKHOUSE_CLUSTER": "depin_cluster"})
    cfg = yaml.safe_load(out.stdout)
    assert cfg["services"]["listener"]["environment"]["DEPINFLOW_SINCE"] == "2026-01-01"
    for svc in ("sink", "migrate"):
        assert cfg["services"][svc]["environment"]["DEPINFLOW_CLICKHOUSE_CLUSTER"] == "depin_cluster"


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_required_settings_fail_with_a_clear_message(compose_bin, missing):
    out = compose_config(compose_bin, {k: v for k, v in REQUIRED.items() if k != missing})
    assert out.returncode != 0
    assert f"set {missing}" in out.stderr


def test_dockerfile_installs_depinflow_as_the_entrypoint():
    text = (INFRA / "production" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert 'ENTRYPOINT ["depinflow"]' in text
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    repo = INFRA.parent
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for path in src.split():
            assert (repo / path).exists(), path


def test_grafana_data_source_is_provisioned_read_only():
    doc = yaml.safe_load((INFRA / "production" / "grafana" / "datasources.yml").read_text())
    (ds,) = doc["datasources"]
    assert ds["type"] == "grafana-clickhouse-datasource"
    assert ds["jsonData"]["protocol"] == "http" and ds["jsonData"]["username"] == "reader"
    assert ds["jsonData"]["host"] == "clickhouse" and ds["jsonData"]["defaultDatabase"] == "depinflow"
