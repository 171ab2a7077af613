"""Apache Kafka 4.x in KRaft mode, from Maven Central artifacts: one node, or a cluster of several.

Every node runs both roles (broker and controller); a cluster's nodes form one controller quorum of
all of them (docs/decisions.md, "A three-node cluster"). Node n listens for clients on its address's
port and for the quorum on the next port (9092/9093, 9094/9095, 9096/9097 by default).
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack.process import kill_group, port_open, read_pid, require, spawn, stop_pid, wait_until
from eventlog.config import PROJECT_ROOT, ConfigError, CoreSettings

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
REPLICAS = 3  # replicas of the internal topics (offsets, transaction state) on a cluster of 3 or more

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


@dataclass(frozen=True)
class NodeAddress:
    host: str
    port: int  # clients; the controller listens on port + 1

    @property
    def controller_port(self) -> int:
        return self.port + 1

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def node_addresses(bootstrap: str, nodes: int) -> list[NodeAddress]:
    """The nodes of a local stack: the bootstrap list's entries when it names `nodes` of them, else
    every second port from the first entry's (127.0.0.1:9092 -> 9092, 9094, 9096)."""
    listed = [entry.strip().rpartition(":") for entry in bootstrap.split(",") if entry.strip()]
    addresses = [NodeAddress(host or "127.0.0.1", int(port)) for host, _, port in listed]
    if len(addresses) == nodes:
        return addresses
    first = addresses[0]
    return [NodeAddress(first.host, first.port + 2 * n) for n in range(nodes)]


def free_node_addresses(nodes: int, host: str = "127.0.0.1") -> list[NodeAddress]:
    """`nodes` addresses whose port and port + 1 can both be bound now (tests start clusters on them).
    Drawn below the kernel's ephemeral range, where client sockets would otherwise take them meanwhile."""
    addresses: list[NodeAddress] = []
    while len(addresses) < nodes:
        port = random.randrange(20_000, 32_000, 2)
        if all(bindable(host, p) for p in (port, port + 1)) and NodeAddress(host, port) not in addresses:
            addresses.append(NodeAddress(host, port))
    return addresses


def bindable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def bootstrap_of(addresses: list[NodeAddress]) -> str:
    return ",".join(str(a) for a in addresses)


def resolve_runtime(settings: CoreSettings) -> Path:
    """Resolve kafka_2.13 and its runtime dependencies with Maven into the cache (once); returns the folder."""
    libs = settings.home_path / "cache" / f"kafka-{KAFKA_VERSION}" / "libs"
    if libs.is_dir() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    require("java", "Java 17 (to run the Kafka broker)")
    mvn = require("mvn", "Apache Maven (to fetch the Kafka broker from Maven Central)")
    libs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
         f"-DoutputDirectory={libs}"],
        check=True,
    )
    return libs


class KafkaNode:
    """One KRaft node (broker and controller) of a cluster whose nodes are `quorum`."""

    def __init__(self, libs: Path, folder: Path, log_path: Path, node_id: int, quorum: list[NodeAddress]) -> None:
        self.libs = libs
        self.folder = folder
        self.data = folder / "data"
        self.pid_file = folder / "broker.pid"
        self.log_path = log_path
        self.node_id = node_id
        self.quorum = quorum
        self.address = quorum[node_id - 1]

    @property
    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def write_config(self) -> Path:
        nodes = len(self.quorum)
        replicas = min(nodes, REPLICAS)
        min_isr = max(1, replicas - 1)
        host, port, controller = self.address.host, self.address.port, self.address.controller_port
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "server.properties"
        config.write_text(
            "\n".join([
                "process.roles=broker,controller",
                f"node.id={self.node_id}",
                "controller.quorum.voters=" + ",".join(
                    f"{n}@{a.host}:{a.controller_port}" for n, a in enumerate(self.quorum, start=1)),
                f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
                f"advertised.listeners=PLAINTEXT://{host}:{port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={self.data}",
                "num.partitions=1",
                f"default.replication.factor={replicas}",
                f"min.insync.replicas={min_isr}",
                f"offsets.topic.replication.factor={replicas}",
                f"transaction.state.log.replication.factor={replicas}",
                f"transaction.state.log.min.isr={min_isr}",
                f"share.coordinator.state.topic.replication.factor={replicas}",
                f"share.coordinator.state.topic.min.isr={min_isr}",
                "unclean.leader.election.enable=false",
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

    def start(self) -> None:
        """Format the storage on first start, then spawn the node (without waiting for it)."""
        config = self.write_config()
        if not (self.data / "meta.properties").exists():
            subprocess.run(
                self.java_command("kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c", str(config)),
                check=True, stdout=subprocess.DEVNULL,
            )
        if self.pid is None:
            spawn(self.java_command("kafka.Kafka", str(config)), self.log_path, self.pid_file)

    def kill(self) -> None:
        """SIGKILL: the node dies as in a crash, without a controlled shutdown."""
        pid = self.pid
        if pid is not None:
            kill_group(pid, signal.SIGKILL)
            wait_until(lambda: self.pid is None, f"Kafka node {self.node_id} to die", 30)

    def stop(self) -> bool:
        return stop_pid(self.pid_file, timeout=60)


class KafkaCluster:
    """The local stack's Kafka: `nodes` KRaft nodes on the settings' bootstrap addresses.

    One node keeps its files in `<home>/kafka` (as the one-node stack always has); a cluster's node n
    in `<home>/kafka-cluster/node-n`. `folder` and `addresses` override both (tests start clusters in
    a temporary folder on free ports).
    """

    def __init__(self, settings: CoreSettings, nodes: int = 1, *, folder: Path | None = None,
                 addresses: list[NodeAddress] | None = None) -> None:
        if nodes < 1:
            raise ConfigError(f"a Kafka cluster needs at least one node, not {nodes}")
        self.settings = settings
        self.addresses = addresses or node_addresses(settings.kafka_bootstrap, nodes)
        self.bootstrap = bootstrap_of(self.addresses)
        home = settings.home_path
        self.libs = home / "cache" / f"kafka-{KAFKA_VERSION}" / "libs"
        if folder is None and nodes == 1:
            folders, logs = [home / "kafka"], [home / "logs" / "kafka.log"]
        else:
            root = folder or home / "kafka-cluster"
            folders = [root / f"node-{n}" for n in range(1, nodes + 1)]
            logs = [f / "kafka.log" for f in folders] if folder else [
                home / "logs" / f"kafka-node-{n}.log" for n in range(1, nodes + 1)]
        self.nodes = [KafkaNode(self.libs, f, log, n, self.addresses)
                      for n, (f, log) in enumerate(zip(folders, logs, strict=True), start=1)]

    def brokers_up(self) -> int:
        """How many brokers the cluster's metadata lists (0 when none answers)."""
        from confluent_kafka.admin import AdminClient

        listening = [a for a in self.addresses if port_open(a.host, a.port)]
        if not listening:  # ask only nodes that listen: librdkafka logs every refused connect
            return 0
        admin = AdminClient({"bootstrap.servers": bootstrap_of(listening), "socket.timeout.ms": 2000})
        try:
            return len(admin.list_topics(timeout=2).brokers)
        except Exception:
            return 0

    def is_ready(self) -> bool:
        return self.brokers_up() >= len(self.nodes)

    def start(self) -> str:
        up = self.brokers_up()
        if up >= len(self.nodes):
            return f"Kafka already up on {self.bootstrap} ({up} broker{'s' if up > 1 else ''})"
        if up and all(node.pid is None for node in self.nodes):
            raise ConfigError(f"a Kafka with {up} broker(s) already answers on {self.bootstrap}: stop it (`lc down` "
                              f"if this stack started it) or choose other ports with LC_KAFKA_BOOTSTRAP before "
                              f"starting {len(self.nodes)} node(s)")
        resolve_runtime(self.settings)
        for node in self.nodes:
            node.start()
        self.wait_ready()
        nodes = len(self.nodes)
        return (f"Kafka {KAFKA_VERSION} (KRaft, {nodes} node{'s' if nodes > 1 else ''}, broker and controller each) "
                f"up on {self.bootstrap}")

    def wait_ready(self, timeout: float = 120) -> None:
        wait_until(self.is_ready, "Kafka", timeout, alive=lambda: all(n.pid is not None for n in self.nodes),
                   log_path=self.nodes[0].log_path)

    def stop(self) -> bool:
        return stop_together([node.pid_file for node in self.nodes])


def local_node_pids(settings: CoreSettings) -> list[int]:
    """The running Kafka nodes of the local stack (its one node, or a cluster's nodes), by their pid files:
    what a benchmark counts as the broker's CPU."""
    return [pid for pid_file in _local_pid_files(settings) if (pid := read_pid(pid_file)) is not None]


def stop_local_kafka(settings: CoreSettings) -> bool:
    """Stop every Kafka node the stack in the settings' home started (one node or a cluster)."""
    return stop_together(_local_pid_files(settings))


def _local_pid_files(settings: CoreSettings) -> list[Path]:
    home = settings.home_path
    return [home / "kafka" / "broker.pid", *sorted((home / "kafka-cluster").glob("node-*/broker.pid"))]


def stop_together(pid_files: list[Path]) -> bool:
    """SIGTERM every node at once, then wait for each: stopped one by one, the last nodes of a quorum
    would wait for a majority that is already gone before they give up their controlled shutdown."""
    for pid in filter(None, (read_pid(pid_file) for pid_file in pid_files)):
        kill_group(pid, signal.SIGTERM)
    stopped = [stop_pid(pid_file, timeout=60) for pid_file in pid_files]
    return any(stopped)
