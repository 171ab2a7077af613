"""Apache Kafka 4.x in KRaft mode (one node, broker and controller), from Maven Central artifacts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devstack.process import port_open, read_pid, require, spawn, stop_pid, wait_until
from eventlog.config import PROJECT_ROOT, CoreSettings

KAFKA_VERSION = "4.1.1"
POM = PROJECT_ROOT / "devstack" / "kafka-pom.xml"
CLUSTER_ID = "2iQZXsMbRGmeJqv0HO1dNw"  # a fixed KRaft cluster id (base64 of 16 bytes)
# KIP-848 groups: the broker alone sets the session timeout (45 s by default, and no group may go
# lower). A stage killed without leaving its group keeps its partitions until its session expires,
# so a restarted instance would wait 45 s; with 6 s it resumes within 10 s (docs/decisions.md,
# "A restarted stage resumes within 10 s"). compose.yaml sets the same values.
GROUP_SESSION_SETTINGS = (
    "group.consumer.session.timeout.ms=6000",
    "group.consumer.min.session.timeout.ms=6000",
    "group.consumer.heartbeat.interval.ms=1500",
    "group.consumer.min.heartbeat.interval.ms=1000",
)

LOG4J2 = """status = warn
appender.file.type = Console
appender.file.name = STDOUT
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRefs = stdout
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


class KafkaBroker:
    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        home = settings.home_path
        self.libs = home / "cache" / f"kafka-{KAFKA_VERSION}" / "libs"
        self.folder = home / "kafka"
        self.data = self.folder / "data"
        self.pid_file = self.folder / "broker.pid"
        self.log_path = home / "logs" / "kafka.log"
        host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port)

    def is_ready(self) -> bool:
        from confluent_kafka.admin import AdminClient

        if not port_open(self.host, self.port):
            return False  # ask the broker only once it listens: librdkafka logs every refused connect
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "socket.timeout.ms": 2000})
        try:
            return bool(admin.list_topics(timeout=2).brokers)
        except Exception:
            return False

    def resolve_runtime(self) -> None:
        """Resolve kafka_2.13 and its runtime dependencies with Maven into the cache (once)."""
        if self.libs.is_dir() and any(self.libs.glob("kafka_2.13-*.jar")):
            return
        require("java", "Java 17 (to run the Kafka broker)")
        mvn = require("mvn", "Apache Maven (to fetch the Kafka broker from Maven Central)")
        self.libs.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
             f"-DoutputDirectory={self.libs}"],
            check=True,
        )

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        controller = self.port + 1
        config = self.folder / "server.properties"
        config.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{self.host}:{controller}",
                f"listeners=PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{controller}",
                f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={self.data}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                *GROUP_SESSION_SETTINGS,
                "",
            ])
        )
        (self.folder / "log4j2.properties").write_text(LOG4J2)
        return config

    def java_command(self, main_class: str, *args: str) -> list[str]:
        java = require("java", "Java 17 (to run the Kafka broker)")
        return [java, "-Xms256m", "-Xmx1g", f"-Dlog4j2.configurationFile={self.folder / 'log4j2.properties'}",
                "-cp", f"{self.libs}/*", main_class, *args]

    def start(self) -> str:
        if self.is_ready():
            return f"Kafka already up on {self.settings.kafka_bootstrap}"
        self.resolve_runtime()
        config = self.write_config()
        if not (self.data / "meta.properties").exists():
            subprocess.run(
                self.java_command("kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c", str(config)),
                check=True, stdout=subprocess.DEVNULL,
            )
        if read_pid(self.pid_file) is None:
            spawn(self.java_command("kafka.Kafka", str(config)), self.log_path, self.pid_file)
        wait_until(self.is_ready, "Kafka", 90, alive=lambda: read_pid(self.pid_file) is not None,
                   log_path=self.log_path)
        return f"Kafka {KAFKA_VERSION} (KRaft) up on {self.settings.kafka_bootstrap}"

    def stop(self) -> bool:
        return stop_pid(self.pid_file, timeout=60)
