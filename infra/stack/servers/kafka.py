"""Apache Kafka 4.x in KRaft mode: one process that is both broker and controller.

Maven Central serves Kafka's server jars but not the release tarball, so there are no `bin/`
scripts: `infra/stack/kafka/pom.xml` pins the version, `mvn dependency:copy-dependencies`
resolves the jars into `.stack/opt/kafka/<version>/libs`, and the broker and the storage
formatter run as `java -cp libs/* <main class>`. The storage is formatted once, with a fixed
cluster id, before the first start.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from chalicelib.adapters.kafka.publisher import message_max_bytes
from chalicelib.config import KafkaSettings
from infra.stack.paths import StackPaths
from infra.stack.process import StackError, run
from infra.stack.server import Server

POM = Path(__file__).resolve().parents[1] / "kafka" / "pom.xml"
# The broker's and the formatter's entry points; a test checks both are in the pinned jars.
BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
# One node, one cluster: a fixed id (22 characters of base64) keeps a re-format idempotent.
CLUSTER_ID = "c2FnYS1sb2NhbC1rYWZrYQ"
NODE_ID = 1


def pinned_version(pom: Path = POM) -> str:
    """The Kafka version the pom pins (its `kafka.version` property)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if found is None:
        raise StackError(f"{pom} pins no kafka.version")
    return found.group(1).strip()


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


class Kafka(Server):
    name = "kafka"
    heap = "-Xmx512m -Xms128m"
    start_timeout = 90.0

    def __init__(self, paths: StackPaths, settings: KafkaSettings) -> None:
        super().__init__(paths)
        self.settings = settings
        self.host, self.port = host_port(settings.brokers[0])
        self.controller_host, self.controller_port = host_port(settings.controller)
        self.version = pinned_version()

    # -- install ------------------------------------------------------------------------------

    @property
    def libs(self) -> Path:
        return self.paths.opt / "kafka" / self.version / "libs"

    def is_installed(self) -> bool:
        return (shutil.which("java") is not None
                and (self.libs / f"kafka_2.13-{self.version}.jar").is_file())

    def install(self) -> None:
        missing = [package for tool, package in (("java", "openjdk-17-jre-headless"),
                                                 ("mvn", "maven"))
                   if shutil.which(tool) is None]
        if missing:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            run(["apt-get", "update", "-q"], env=env)
            run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                env=env, timeout=600)
        # Resolve into a staging folder and rename it: an interrupted install leaves no
        # half-filled libs/ that is_installed would take for whole.
        staging = self.libs.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        run(["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
             f"-DoutputDirectory={staging}", "-DincludeScope=runtime"], timeout=600)
        shutil.rmtree(self.libs, ignore_errors=True)
        staging.rename(self.libs)

    def main_classes(self) -> set[str]:
        """Which of the broker's and the formatter's main classes the installed jars hold."""
        wanted = {BROKER_MAIN: BROKER_MAIN.replace(".", "/") + ".class",
                  STORAGE_TOOL_MAIN: STORAGE_TOOL_MAIN.replace(".", "/") + ".class"}
        found = set()
        for jar in self.libs.glob("kafka*.jar"):
            with zipfile.ZipFile(jar) as archive:
                names = set(archive.namelist())
            found.update(main for main, entry in wanted.items() if entry in names)
        return found

    # -- configuration -------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        # Its own folder, apart from the ZooKeeper-era broker's `data/`, which KRaft can't read.
        return self.data_dir / "kraft"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "kraft.properties"

    @property
    def marker(self) -> str:
        return str(self.properties_file)

    def properties(self) -> Mapping[str, str]:
        listener = f"{self.host}:{self.port}"
        controller = f"{self.controller_host}:{self.controller_port}"
        return {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{controller}",
            "listeners": f"PLAINTEXT://{listener},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{listener}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": str(self.settings.partitions),
            # The service's topic is made by bootstrap; tests and benches write to their own.
            "auto.create.topics.enable": "true",
            "message.max.bytes": str(message_max_bytes(self.settings)),
            # One node: every internal topic has one replica.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Tests start and stop consumer groups all the time: no 3 s wait before a rebalance.
            "group.initial.rebalance.delay.ms": "0",
            "group.consumer.min.session.timeout.ms": "1000",
            "group.classic.min.session.timeout.ms": "1000",
            "log.retention.hours": "168",
            "log.segment.bytes": "67108864",
        }

    @staticmethod
    def _log4j_config() -> str:
        # To standard output, which the supervisor keeps as the server's log (`saga stack logs`).
        return (
            "Configuration:\n"
            "  Appenders:\n"
            "    Console:\n"
            "      name: stdout\n"
            "      PatternLayout: {pattern: \"[%d] %p %m (%c)%n\"}\n"
            "  Loggers:\n"
            "    Root: {level: INFO, AppenderRef: {ref: stdout}}\n"
            "    Logger:\n"
            "      - {name: kafka.request.logger, level: WARN}\n"
            "      - {name: org.apache.kafka.controller, level: WARN}\n"
        )

    @property
    def log4j_file(self) -> Path:
        return self.data_dir / "log4j2.yaml"

    def prepare(self) -> None:
        super().prepare()
        lines = [f"{key}={value}" for key, value in self.properties().items()]
        self.properties_file.write_text("\n".join(lines) + "\n")
        self.log4j_file.write_text(self._log4j_config())
        if not (self.log_dir / "meta.properties").is_file():
            run(self._java(STORAGE_TOOL_MAIN, "format", "--ignore-formatted",
                           "--cluster-id", CLUSTER_ID, "--config", str(self.properties_file)),
                env=self.environment(), timeout=120)

    def _java(self, main: str, *args: str) -> list[str]:
        return ["java", *self.heap.split(), "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.log4j_file}",
                "-cp", f"{self.libs}/*", main, *args]

    def command(self) -> list[str]:
        return self._java(BROKER_MAIN, str(self.properties_file))

    # -- health and topic -----------------------------------------------------------------------

    def _admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(bootstrap_servers=self.settings.brokers,
                                api_version=self.settings.api_version_tuple(),
                                request_timeout_ms=3000, connections_max_idle_ms=5000)

    def is_healthy(self) -> bool:
        """The broker answers and the service's topic has a leader for every partition."""
        return self.is_ready() and self.topic_ready()

    def is_ready(self) -> bool:
        """The broker answers a metadata request (all a first start waits for: the topic is
        made afterwards, by bootstrap)."""
        try:
            admin = self._admin()
        except KafkaError:
            return False
        try:
            admin.describe_cluster()
            return True
        except KafkaError:
            return False
        finally:
            admin.close()

    def bootstrap(self) -> None:
        topic = self.settings.topic
        admin = self._admin()
        try:
            if topic not in admin.list_topics():
                # A racing `up` may have made it.
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics([NewTopic(topic, self.settings.partitions, 1)])
        finally:
            admin.close()
        self._wait_for_leaders(topic)

    def topic_ready(self) -> bool:
        """Every partition of the service's topic has a leader."""
        admin = self._admin()
        try:
            described = admin.describe_topics([self.settings.topic])
        except KafkaError:
            return False
        finally:
            admin.close()
        partitions = described[0].get("partitions", []) if described else []
        return (len(partitions) >= self.settings.partitions
                and all(p.get("leader_id", -1) >= 0 for p in partitions))

    def _wait_for_leaders(self, topic: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.topic_ready():
                return
            time.sleep(0.3)
        raise StackError(f"Kafka topic {topic!r} has no leaders after {timeout_s:.0f}s")
