"""A chain writer's metrics: transactions sent through the chain client's observer, the wallet's balance
read on each scrape (eventlog/metrics.py), registered when the writer starts."""

from __future__ import annotations

from kits.background import Background, wait_for
from kits.writers import new_system, register, writer_settings
from prometheus_client import REGISTRY

from effects.registry_writer import RegistryWriter
from eventlog.producer import EventProducer


def test_the_registry_writer_counts_its_transactions_and_serves_its_balance(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    challenge = drive.create_challenge()
    admin = system.roles.admin.address
    s = writer_settings(settings, system, tmp_path, registry_private_key="0x" + system.roles.admin.key.hex(),
                        metadata_base_url="http://localhost:3000")
    before = REGISTRY.get_sample_value("lc_transactions_sent_total", {"wallet": admin, "function": "ownerSet"}) or 0
    register(EventProducer(s, "test"), challenge)
    writer = RegistryWriter(s)
    runner = Background(writer.run, writer.stop.set)
    try:
        wait_for(lambda: (REGISTRY.get_sample_value("lc_transactions_sent_total",
                                                    {"wallet": admin, "function": "ownerSet"}) or 0) > before,
                 what="the ownerSet transaction counted")
        balance = REGISTRY.get_sample_value("lc_wallet_balance_wei", {"wallet": admin})
        assert balance == system.client.w3.eth.get_balance(admin)
    finally:
        runner.stop()
