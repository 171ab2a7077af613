"""MetadataRegistry (write-once), ChallengeTaskRegistry bindings and the PoI verifier on anvil."""

from __future__ import annotations

from eth_utils import keccak
from kits.contracts import args_of, reverts

from chain import aivm
from devchain.scenario import Inference, Scenario


def test_metadata_owner_set_is_write_once(drive: Scenario):
    registry, pay = drive.system.metadata, drive.system.pay.address
    receipt = drive.metadata_set(5, "https://x/meta/5")
    set_event = args_of(registry.events.MetadataSet, receipt)[0]
    assert (set_event["challengeContract"], set_event["challengeId"], set_event["newUri"]) == (pay, 5, "https://x/meta/5")
    with reverts("AlreadySet"):
        drive.metadata_set(5, "https://x/meta/5-again")
    with reverts("EmptyUri"):
        drive.metadata_set(6, "")
    with reverts("NotOwner"):
        drive.client.send(registry, "ownerSet", pay, 7, "u", sender=drive.players[0])
    assert drive.client.call(registry, "uri", pay, 5) == "https://x/meta/5"


def test_metadata_force_set_overwrites_and_clear_deletes(drive: Scenario):
    registry, pay = drive.system.metadata, drive.system.pay.address
    drive.metadata_set(5, "old")
    forced = args_of(registry.events.MetadataForceSet, drive.metadata_force_set(5, "new"))[0]
    assert (forced["previousUri"], forced["newUri"]) == ("old", "new")
    assert drive.client.call(registry, "uri", pay, 5) == "new"
    cleared = args_of(registry.events.MetadataCleared, drive.metadata_clear(5))[0]
    assert (cleared["challengeId"], cleared["clearer"]) == (5, drive.roles.admin.address)
    assert drive.client.call(registry, "hasUri", pay, 5) is False
    drive.metadata_set(5, "again")  # write-once applies to a present URI only


def test_metadata_batch_is_all_or_nothing(drive: Scenario):
    registry, pay, admin = drive.system.metadata, drive.system.pay.address, drive.roles.admin
    drive.metadata_set(2, "taken")
    with reverts("AlreadySet"):
        drive.client.send(registry, "ownerSetBatch", [pay, pay], [1, 2], ["a", "b"], sender=admin)
    assert drive.client.call(registry, "uri", pay, 1) == ""
    with reverts("LenMismatch"):
        drive.client.send(registry, "ownerSetBatch", [pay], [1, 3], ["a", "b"], sender=admin)
    drive.client.send(registry, "ownerSetBatch", [pay, pay], [1, 3], ["a", "c"], sender=admin)
    assert drive.client.call(registry, "getMany", [pay, pay, pay], [1, 2, 3]) == ["a", "taken", "c"]
    # one contract per id: a pair under another contract address is a different (empty) entry
    assert drive.client.call(registry, "getMany", [pay, admin.address], [1, 1]) == ["a", ""]
    with reverts("LenMismatch"):
        drive.client.call(registry, "getMany", [pay], [1, 3])


def _inference(request_id: int = 1) -> Inference:
    return Inference(request_id, keccak(text=f"task{request_id}"), keccak(text="m"), keccak(text="p"),
                     keccak(text="b"), "")


def test_task_registry_bindings_and_who_may_write_them(drive: Scenario):
    registry, subject = drive.system.task_registry, drive.players[0].address
    with reverts("NotAuthorized"):
        drive.client.send(registry, "recordBinding", 2, subject, 1, keccak(text="t"), keccak(text="m"),
                          b"\x00" * 32, b"\x00" * 32, 1, sender=drive.players[1])
    receipt = drive.bind(2, subject, _inference(1))
    recorded = args_of(registry.events.BindingRecorded, receipt)[0]
    assert (recorded["challengeId"], recorded["subject"], recorded["requestId"], recorded["schemaVersion"]) == (
        2, subject, 1, 1)
    binding = drive.client.call(registry, "getBinding", 2, subject)
    assert binding == [1, keccak(text="task1"), keccak(text="m"), keccak(text="p"), keccak(text="b"), 1, True]
    drive.bind(2, subject, _inference(9))  # overwrites
    assert drive.client.call(registry, "getBinding", 2, subject)[0] == 9
    drive.clear_binding(2, subject)
    assert drive.client.call(registry, "bindingExists", 2, subject) is False
    drive.set_registry_dispatcher(drive.roles.worker.address, False)
    with reverts("NotAuthorized"):
        drive.bind(2, subject, _inference(3))


def test_task_registry_rejects_incomplete_bindings(drive: Scenario):
    registry, worker, subject = drive.system.task_registry, drive.roles.worker, drive.players[0].address
    good = [2, subject, 1, keccak(text="t"), keccak(text="m"), b"\x00" * 32, b"\x00" * 32, 1]
    for index, bad_value, error in (
        (1, "0x" + "00" * 20, "InvalidSubject"), (2, 0, "InvalidRequestId"), (3, b"\x00" * 32, "InvalidTask"),
        (4, b"\x00" * 32, "InvalidModelDigest"), (7, 0, "InvalidSchemaVersion"),
    ):
        args = list(good)
        args[index] = bad_value
        with reverts(error):
            drive.client.send(registry, "recordBinding", *args, sender=worker)


def test_verifier_accepts_only_a_bound_finalized_matching_proof(drive: Scenario):
    p, verifier = drive.players, drive.system.verifier
    c = drive.create_challenge(creator=p[0])
    drive.join(c, p[1])
    inference = drive.verified_inference(c.id, p[0].address)

    def verify(challenge_id: int, subject: str, proof: bytes) -> bool:
        return drive.client.call(verifier, "verify", challenge_id, subject, proof)

    good = drive.proof(c.id, p[0].address, inference)
    assert verify(c.id, p[0].address, good) is True
    assert verify(c.id, p[1].address, good) is False  # proof names another subject
    assert verify(c.id, p[1].address, drive.proof(c.id, p[1].address, inference)) is False  # no binding for p1
    assert verify(c.id, p[0].address, drive.proof(c.id, p[0].address, inference, passed=False)) is False
    other = Inference(inference.request_id, inference.task_id, keccak(text="other model"), inference.params_hash,
                      inference.benchmark_hash, "")
    assert verify(c.id, p[0].address, drive.proof(c.id, p[0].address, other)) is False
    assert drive.client.call(verifier, "previewCanonicalResultString", good) == aivm.canonical_response(c.id)
    assert drive.client.call(verifier, "previewResponseHash", good) == aivm.response_hash(aivm.canonical_response(c.id))


def test_verifier_is_false_until_the_request_is_finalized_and_reverts_on_malformed_proofs(drive: Scenario):
    p, verifier = drive.players, drive.system.verifier
    c = drive.create_challenge(creator=p[0])
    inference = drive.request_inference(c.id, p[0].address)
    drive.bind(c.id, p[0].address, inference)
    proof = drive.proof(c.id, p[0].address, inference)
    assert drive.client.call(verifier, "verify", c.id, p[0].address, proof) is False  # bound, not finalized
    drive.settle_inferences()
    assert drive.client.call(verifier, "verify", c.id, p[0].address, proof) is True
    dirty_bool = proof[:5 * 32] + (2).to_bytes(32, "big") + proof[6 * 32:]
    with reverts("unknown"):
        drive.client.call(verifier, "verify", c.id, p[0].address, dirty_bool)
    with reverts("unknown"):
        drive.client.call(verifier, "verify", c.id, p[0].address, proof[:-1])
