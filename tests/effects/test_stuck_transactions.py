"""Stuck transactions on anvil (issue 14 §1): with automine off a transaction stays in the pool; after
LC_WRITER_REPLACE_AFTER_SECONDS the writer sends it again with the same nonce and higher fees, and the
version that is mined is the one reported. One the node evicts (its fee below a raised base fee) is
sent again. Either way the action happens once."""

from __future__ import annotations

import threading
from typing import Any

from kits.background import Background, wait_for
from kits.writers import job_events, new_system, of_type, queue_job, register, writer_settings

from chain.client import ChainClient
from devchain.roles import anvil_roles
from effects.aivm_worker import AivmWorker
from effects.chain import ChainWriter
from eventlog.producer import EventProducer

RECIPIENT = "0x" + "11" * 20


def pooled(client: ChainClient) -> dict[int, dict[str, Any]]:
    """nonce -> pending transaction of the node's pool (one sender in these tests)."""
    content = client.rpc("txpool_content")["pending"]
    return {int(n): tx for txs in content.values() for n, tx in txs.items()}


def test_a_stuck_request_is_replaced_with_the_same_nonce_and_a_higher_fee(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    challenge = drive.create_challenge()
    s = writer_settings(settings, system, tmp_path, writer_replace_after_seconds=1.0)
    producer = EventProducer(s, "test")
    register(producer, challenge)
    eth = system.client.w3.eth
    nonce = eth.get_transaction_count(system.roles.worker.address, "latest")

    system.client.rpc("evm_setAutomine", [False])
    worker = AivmWorker(s)
    runner = Background(worker.run, worker.stop.set)
    try:
        queue_job(producer, challenge.id, [challenge.creator])
        wait_for(lambda: nonce in pooled(system.client), what="the request in the pool")
        first = pooled(system.client)[nonce]
        wait_for(lambda: worker.chain.client.replacements >= 1, what="the request replaced")
        replacement = pooled(system.client)[nonce]
        system.client.rpc("evm_mine")
        system.client.rpc("evm_setAutomine", [True])
        wait_for(lambda: of_type(job_events(s), "TaskBindingRecorded"), what="the binding", timeout=120)
    finally:
        system.client.rpc("evm_setAutomine", [True])
        runner.stop()

    assert replacement["hash"] != first["hash"]
    assert int(replacement["maxFeePerGas"], 16) >= int(first["maxFeePerGas"], 16) * 1.1
    assert int(replacement["maxPriorityFeePerGas"], 16) >= int(first["maxPriorityFeePerGas"], 16) * 1.1
    [sent] = of_type(job_events(s), "AivmRequestSent")
    mined = eth.get_transaction(sent.payload["tx_hash"])
    assert mined["nonce"] == nonce and mined["hash"].to_0x_hex() != first["hash"]  # a replacement was mined
    assert system.client.call(system.aivm, "nextRequestId") == 2  # one request


def test_a_transaction_evicted_from_the_pool_is_sent_again_once(anvil):
    sender = anvil_roles().players[3]
    client = ChainClient(anvil, [sender], receipt_timeout=60, replace_after=0.5)
    before = client.w3.eth.get_balance(RECIPIENT)
    client.rpc("evm_setAutomine", [False])
    result: dict[str, Any] = {}
    sending = threading.Thread(target=lambda: result.update(receipt=client.transfer(RECIPIENT, 7, sender=sender)))
    sending.start()
    try:
        wait_for(lambda: pooled(client), what="the transfer in the pool")
        [evicted] = pooled(client).values()
        base_fee = client.w3.eth.get_block("latest")["baseFeePerGas"]
        client.rpc("anvil_setNextBlockBaseFeePerGas", [hex(base_fee * 100)])
        client.rpc("evm_mine")  # the node drops what cannot pay the new base fee
        wait_for(lambda: pooled(client) and next(iter(pooled(client).values()))["hash"] != evicted["hash"],
                 what="the transfer sent again")
        client.rpc("evm_mine")
        sending.join(30)
    finally:
        client.rpc("evm_setAutomine", [True])
    receipt = result["receipt"]
    assert receipt["status"] == 1 and receipt["transactionHash"].to_0x_hex() != evicted["hash"]
    assert client.w3.eth.get_balance(RECIPIENT) == before + 7  # sent once


def test_a_predecessors_transaction_blocking_the_wallet_is_replaced_by_a_no_op(anvil):
    """A killed writer left a transaction in the pool; its successor, about to look for what was sent
    before, waits for it and after LC_WRITER_REPLACE_AFTER_SECONDS replaces it by a no-op."""
    wallet = anvil_roles().players[2]
    predecessor = ChainClient(anvil, [wallet], receipt_timeout=60)  # never replaces anything
    successor = ChainWriter(anvil, wallet, {}, receipt_timeout=60, replace_after=0.5)
    predecessor.rpc("evm_setAutomine", [False])
    try:
        orphan = predecessor._send_new({"to": RECIPIENT, "value": 3, "gas": 21_000}, wallet)
        settling = threading.Thread(target=successor.wait_until_settled, args=(60.0,))
        settling.start()
        wait_for(lambda: pooled(predecessor)[orphan.nonce]["hash"] != orphan.hashes[0], what="the no-op")
        noop = pooled(predecessor)[orphan.nonce]
        predecessor.rpc("evm_mine")
        settling.join(30)
        assert not settling.is_alive()
    finally:
        predecessor.rpc("evm_setAutomine", [True])
    assert (noop["to"].lower(), int(noop["value"], 16)) == (wallet.address.lower(), 0)
    receipt = predecessor.w3.eth.get_transaction_receipt(noop["hash"])
    assert receipt["status"] == 1
    assert predecessor.w3.eth.get_transaction_count(wallet.address, "latest") == orphan.nonce + 1
    assert predecessor.w3.eth.get_balance(RECIPIENT) == 0  # the orphan's transfer never happened
