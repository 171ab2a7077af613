"""AIVMInferenceV2: request -> commit -> reveal -> attest -> finalize, deadlines and quorum, on anvil."""

from __future__ import annotations

from eth_utils import keccak
from kits.contracts import args_of, reverts

from chain import aivm
from devchain.scenario import Inference, Scenario

FEE = 10**15


def _request(drive: Scenario, challenge_id: int = 2) -> Inference:
    return drive.request_inference(challenge_id, drive.players[0].address, fee=FEE)


def _commit(drive: Scenario, inference: Inference, response: str, secret: bytes = b"s" * 32) -> dict:
    worker = drive.roles.validators[0]
    digest = aivm.commitment(inference.request_id, worker.address, secret, aivm.response_hash(response))
    return drive.client.send(drive.system.aivm, "commitInference", inference.request_id, digest, sender=worker)


def _reveal(drive: Scenario, inference: Inference, response: str, secret: bytes = b"s" * 32) -> dict:
    return drive.client.send(drive.system.aivm, "revealInference", inference.request_id, secret, response,
                             sender=drive.roles.validators[0])


def _attest(drive: Scenario, inference: Inference, response: str, validator_index: int = 0,
            transcript: bytes = aivm.ZERO32, slot: int = 0) -> dict:
    validator = drive.roles.validators[validator_index]
    result = aivm.response_hash(response)
    signature = aivm.sign_attestation(validator, drive.client.chain_id, drive.system.aivm.address,
                                      inference.task_id, result, transcript, slot)
    return drive.client.send(drive.system.aivm, "submitPoIAttestation", inference.task_id, result, transcript, slot,
                             signature, sender=validator)


def _status(drive: Scenario, inference: Inference) -> int:
    return drive.client.call(drive.system.aivm, "requests", inference.request_id)[12]


def test_request_ids_task_ids_and_domain_match_the_pure_helpers(drive: Scenario):
    first, second = _request(drive), _request(drive)
    address = drive.system.aivm.address
    assert (first.request_id, second.request_id) == (1, 2)
    assert first.task_id == aivm.task_id_for(drive.client.chain_id, address, 1)
    assert drive.client.call(drive.system.aivm, "requestIdByTaskId", second.task_id) == 2
    assert drive.client.call(drive.system.aivm, "domainSeparator") == aivm.domain_separator(drive.client.chain_id,
                                                                                             address)
    request = drive.client.call(drive.system.aivm, "requests", 1)
    assert request[12] == aivm.STATUS_REQUESTED and request[7] == FEE
    assert (request[9] - request[8], request[10] - request[8], request[11] - request[8]) == (600, 1800, 5400)


def test_request_validation(drive: Scenario):
    pay = drive.system.aivm
    zero, h = b"\x00" * 32, keccak(text="x")
    with reverts("InvalidParams"):
        drive.client.send(pay, "requestInferenceV2", "", h, h, h, h, sender=drive.roles.worker)
    with reverts("InvalidParams"):
        drive.client.send(pay, "requestInferenceV2", "m", h, h, zero, h, sender=drive.roles.worker)
    drive.client.send(pay, "setSpamControls", FEE, 1, sender=drive.roles.admin)
    with reverts("InsufficientFee"):
        drive.client.send(pay, "requestInferenceV2", "m", h, h, h, h, sender=drive.roles.worker, value=FEE - 1)
    drive.client.send(pay, "requestInferenceV2", "m", h, h, h, h, sender=drive.roles.worker, value=FEE)
    with reverts("TooManyPending"):
        drive.client.send(pay, "requestInferenceV2", "m", h, h, h, h, sender=drive.roles.worker, value=FEE)


def test_full_flow_finalizes_and_splits_the_fee(drive: Scenario):
    inference, response = _request(drive), aivm.canonical_response(2)
    worker = drive.roles.validators[0]
    _commit(drive, inference, response)
    revealed = args_of(drive.system.aivm.events.InferenceRevealed, _reveal(drive, inference, response))[0]
    assert (revealed["responseHash"], revealed["response"]) == (aivm.response_hash(response), response)
    assert _status(drive, inference) == aivm.STATUS_REVEALED
    before = drive.client.w3.eth.get_balance(drive.roles.protocol.address)

    receipt = _attest(drive, inference, response, validator_index=1)  # relayed by a validator, not the worker

    attested = args_of(drive.system.aivm.events.PoIAttested, receipt)[0]
    assert (attested["validator"], attested["count"]) == (drive.roles.validators[1].address, 1)
    final = args_of(drive.system.aivm.events.InferenceFinalized, receipt)[0]
    assert (final["requestId"], final["taskId"], final["worker"]) == (1, inference.task_id, worker.address)
    assert final["resultHash"] == aivm.response_hash(response)
    assert (final["workerPaidWei"], final["protocolFeeWei"]) == (FEE * 9 // 10, FEE // 10)
    assert drive.client.w3.eth.get_balance(drive.roles.protocol.address) - before == FEE // 10
    assert _status(drive, inference) == aivm.STATUS_FINALIZED


def test_attestations_before_the_reveal_finalize_at_reveal(drive: Scenario):
    inference, response = _request(drive), aivm.canonical_response(2)
    _commit(drive, inference, response)
    early = _attest(drive, inference, response)
    assert args_of(drive.system.aivm.events.InferenceFinalized, early) == []
    assert args_of(drive.system.aivm.events.InferenceFinalized, _reveal(drive, inference, response))


def test_quorum_needs_distinct_validators(drive: Scenario):
    drive.client.send(drive.system.aivm, "setPoIQuorum", 2, sender=drive.roles.admin)
    inference, response = _request(drive), aivm.canonical_response(2)
    _commit(drive, inference, response)
    _reveal(drive, inference, response)
    first = _attest(drive, inference, response, 0)
    repeat = _attest(drive, inference, response, 0)  # same signer: silently ignored
    assert args_of(drive.system.aivm.events.PoIAttested, repeat) == []
    assert args_of(drive.system.aivm.events.InferenceFinalized, first) == []
    assert drive.client.call(drive.system.aivm, "poiAttestationCount", inference.task_id) == 1
    second = _attest(drive, inference, response, 1)
    assert args_of(drive.system.aivm.events.PoIAttested, second)[0]["count"] == 2
    assert args_of(drive.system.aivm.events.InferenceFinalized, second)


def test_commit_and_reveal_deadlines(drive: Scenario):
    late, response = _request(drive), aivm.canonical_response(2)
    drive.client.increase_time(601)
    with reverts("DeadlinePassed"):
        _commit(drive, late, response)
    with reverts("NotRequester"):
        drive.client.send(drive.system.aivm, "cancelExpired", late.request_id, sender=drive.players[0])
    drive.client.send(drive.system.aivm, "cancelExpired", late.request_id, sender=drive.roles.worker)
    assert _status(drive, late) == aivm.STATUS_CANCELLED

    slow = _request(drive)
    with reverts("DeadlineNotReached"):
        drive.client.send(drive.system.aivm, "cancelExpired", slow.request_id, sender=drive.roles.worker)
    _commit(drive, slow, response)
    drive.client.increase_time(1801)
    with reverts("DeadlinePassed"):
        _reveal(drive, slow, response)
    drive.client.send(drive.system.aivm, "timeoutReveal", slow.request_id, sender=drive.players[2])
    assert _status(drive, slow) == aivm.STATUS_TIMED_OUT


def test_reveal_checks_worker_and_commitment(drive: Scenario):
    inference, response = _request(drive), aivm.canonical_response(2)
    _commit(drive, inference, response)
    with reverts("commitment mismatch"):
        _reveal(drive, inference, response, secret=b"x" * 32)
    with reverts("commitment mismatch"):
        _reveal(drive, inference, aivm.canonical_response(3))
    with reverts("NotWorker"):
        drive.client.send(drive.system.aivm, "revealInference", inference.request_id, b"s" * 32, response,
                          sender=drive.roles.validators[1])
    with reverts("WrongStatus"):
        _commit(drive, inference, response)


def test_attestation_rules(drive: Scenario):
    inference, response = _request(drive), aivm.canonical_response(2)
    outsider = drive.players[0]
    signature = aivm.sign_attestation(outsider, drive.client.chain_id, drive.system.aivm.address, inference.task_id,
                                      aivm.response_hash(response))
    with reverts("NotActiveValidator"):
        drive.client.send(drive.system.aivm, "submitPoIAttestation", inference.task_id, aivm.response_hash(response),
                          aivm.ZERO32, 0, signature, sender=outsider)
    with reverts("ECDSAInvalidSignatureLength"):
        drive.client.send(drive.system.aivm, "submitPoIAttestation", inference.task_id, aivm.response_hash(response),
                          aivm.ZERO32, 0, signature[:64], sender=outsider)
    _attest(drive, inference, response, 0)
    with reverts("ConflictingPoIResult"):
        _attest(drive, inference, aivm.canonical_response(3), 1)
    _attest(drive, inference, response, 1, transcript=keccak(text="t"), slot=5)  # first non-zero fixes them
    assert drive.client.call(drive.system.aivm, "poiTranscriptHashByTask", inference.task_id) == keccak(text="t")
    drive.client.send(drive.system.aivm, "setPoIQuorum", 3, sender=drive.roles.admin)
    drive.client.send(drive.system.validator_registry, "registerValidator", b"\x04", sender=outsider, value=1)
    with reverts("ConflictingPoIResult"):
        _attest_as(drive, inference, response, outsider, aivm.ZERO32, 5)


def _attest_as(drive: Scenario, inference: Inference, response: str, validator: object, transcript: bytes,
               slot: int) -> dict:
    result = aivm.response_hash(response)
    signature = aivm.sign_attestation(validator, drive.client.chain_id, drive.system.aivm.address,
                                      inference.task_id, result, transcript, slot)
    return drive.client.send(drive.system.aivm, "submitPoIAttestation", inference.task_id, result, transcript, slot,
                             signature, sender=validator)


def test_no_finalization_after_the_finalize_deadline(drive: Scenario):
    inference, response = _request(drive), aivm.canonical_response(2)
    _commit(drive, inference, response)
    _reveal(drive, inference, response)
    drive.client.increase_time(5_401)
    assert args_of(drive.system.aivm.events.InferenceFinalized, _attest(drive, inference, response)) == []
    assert _status(drive, inference) == aivm.STATUS_REVEALED
    drive.client.send(drive.system.aivm, "reclaimAfterFinalizeTimeout", inference.request_id, sender=drive.roles.worker)
    assert _status(drive, inference) == aivm.STATUS_CANCELLED
