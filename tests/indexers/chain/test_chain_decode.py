"""Pure tests of the catalogue, the decoders and the ChainEvent schema."""

from __future__ import annotations

import json

import pytest
from kits.chain import emitter_calldata

from eventlog.serde import EventSerde
from indexers.chain.abi import EventAbi
from indexers.chain.avro import chain_event_schema, render, schema_path
from indexers.chain.catalogue import (
    ROLES,
    CatalogueError,
    abi_events,
    build_decoder_table,
    spec_events,
)
from indexers.chain.decode import UndecodableLog
from indexers.chain.messages import chain_event, retraction
from indexers.chain.model import RawLog

# topic0 anchors straight from spec/chain.md §1 (computed there from the real ABIs)
SPEC_TOPIC0 = {
    "ChallengeCreated": "d4ff274a9f4de44eb9cb7369f829f06bb94b3cf69d2b422b1fa81d28eef95235",
    "Joined": "d5b030fc17ee555aeea484ceb134047c9d82176003282c85150c3b2552c6ef66",
    "ParticipantProofSubmitted": "61d4565729ef18ae3c6557c0ca7250c197790c3bfc92c7d5ec000c7a07d2a3ea",
    "WinnerMarked": "124fed6cbf6373f8cf4a56a3b00d10a865480c56cca58d35cfb37ac6100b8f92",
    "VerificationConfigUpdated": "20309ea0845f13ad24c6912ae9b099e736e9e79df13bc10e88e6a7a79c170754",
    "Finalized": "8450c98b6c7639389239ba935fb62b1edd38265d734ce1d4b6ced548f32bc45e",
    "Paused": "4c1b01967accb6c54a1cfd9474e902600feebb01f9b039c1481f0bc793ec6a58",
    "Canceled": "829a8683c544ad289ce92d3ce06e9ebad69b18a6916e60ec766c2c217461d8e9",
    "WinnerClaimed": "b0173ebd95794ed5522fe7662b11854f3af313ced7aaa9a4050de681ea600dcb",
    "LoserClaimed": "8dbdec192d4a8c1672d2c8b9d20ae3a4e16f5b7396d34589fccff7b1535f5294",
    "RefundClaimed": "f3f402280ef0a7905e124aa621b65eaeb2725c343e8b36d398ed78c29daf285c",
    "AutoDistributed": "732e2e57cbdd46f7b6ef114e9c3510a166142182ce0c4ec682bba90b453fabd9",
    "AutoRefunded": "e195327b2509d4f3385dd7490af83e7598f36b3b34861e096888d896d83ba612",
    "ClaimedETH": "a3ce95edc64f70cc47461aa9f878425ba3693eb0512adc56911c3c7759b168d7",
    "ClaimedERC20": "cbf230a64716fe41a8264c5d2e2d4a6828b095c132ef052d929ed8e92760aea5",
    "InferenceRequestedV2": "502ff1ce80bb4978cc43919182277ec3a5a334346bb27e97ff2e5c3034e9b8bc",
    "InferenceCommitted": "4bf7ae7844e0683d1ce2ae97279a69a596a04a6c35c75425ea1887c659cd65c0",
    "InferenceRevealed": "a4534e8f6c3219423f7e421bf7cba08bc177bc86e469106622d6685ec1526c0d",
    "PoIAttested": "4d9e07f2296ecdc1ec4f4d2f04f967dd587f4ba7305371c01613ddfa5e2a95a1",
    "InferenceFinalized": "e7d6070eea595ec5bf02a34c5db123d46d6e59d0f6c61b3fbd84a2fdf5bc4f0c",
    "BindingRecorded": "d8e8eba2cb437fa8a61d5aae2e12006384e4c443d1c29af284aecbc6ae507745",
    "BindingCleared": "91df586dbb041e783da89b42e302c6f90afcab7b711c5c403f46ba5596b87b6d",
    "MetadataSet": "d1663021751fdb7c499464d870768366e28f9a2c1fbb36919445f6b01a1f65d4",
    "MetadataForceSet": "20ca7af81965a2a1d2a9c989a8f54ce1ccd1e35f1e7a538c9386d45d82866aff",
    "MetadataCleared": "601848e5b2f1be00c0aad72ce195022ac336cb3474692481b780ffb1491a8586",
    "DispatcherSet": "2e3f7d2295814d1c6955115797a3965aa006a8f9dec8a662bc2f5fa4427ba9c9",
}
ADDRESSES = {role: f"0x{index + 1:040x}" for index, role in enumerate(ROLES)}
USER = "0x" + "ab" * 20
TASK = "0x" + "cd" * 32


def sample_value(abi_type: str, index: int):
    if abi_type == "address":
        return "0x" + f"{index + 1:02x}" * 20
    if abi_type == "bool":
        return True
    if abi_type == "string":
        return f"text é {index} " * 5
    if abi_type.startswith("bytes"):
        return bytes([index + 1]) * int(abi_type[5:])
    bits = int(abi_type.removeprefix("uint") or 256)
    return 2**bits - 1 - index  # the largest values: nothing may be truncated


def raw_log(address: str, abi: EventAbi, args: dict, *, log_index: int = 0, block: int = 5) -> RawLog:
    calldata = emitter_calldata(abi, args)
    count = calldata[0]
    topics = tuple(calldata[3 + 32 * i: 35 + 32 * i] for i in range(count))
    return RawLog(address, topics, calldata[3 + 32 * count:], block, "0x" + "0b" * 32, "0x" + "0c" * 32, 0, log_index)


def expected(abi_type: str, value):
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and abi_type.startswith("uint"):
        return value if int(abi_type[4:] or 256) <= 32 else str(value)
    return value


def test_catalogue_matches_the_spec_topic0s():
    topics = {abi.name: abi.topic0.hex() for events in spec_events().values() for abi in events}
    assert topics == SPEC_TOPIC0


def test_the_deployed_abis_keep_the_spec_topic0s():
    events = abi_events()
    assert {abi.name: abi.topic0.hex() for abis in events.values() for abi in abis} == SPEC_TOPIC0
    assert {(role, abi.name): [i.name for i in abi.inputs] for role, abis in events.items() for abi in abis} == {
        (role, abi.name): [i.name for i in abi.inputs] for role, abis in spec_events().items() for abi in abis
    }, "ABI parameter names differ from the spec: regenerate schemas/ChainEvent with a new version"


@pytest.mark.parametrize("role,abi", [(r, a) for r, abis in spec_events().items() for a in abis],
                         ids=lambda x: getattr(x, "name", x))
def test_every_event_decodes_to_its_arguments(role, abi):
    table = build_decoder_table(ADDRESSES, spec_events())
    args = {param.name: sample_value(param.type, i) for i, param in enumerate(abi.inputs)}
    decoded = table.decoder_for(ADDRESSES[role], abi.topic0).decode(raw_log(ADDRESSES[role], abi, args))
    assert (decoded.contract, decoded.event) == (role, abi.name)
    assert decoded.args == {p.name: expected(p.type, args[p.name]) for p in abi.inputs}
    assert list(decoded.args) == [p.name for p in abi.inputs]


def test_logs_are_matched_by_address_and_topic():
    table = build_decoder_table(ADDRESSES, spec_events())
    joined = spec_events()["ChallengePay"][1]
    assert table.decoder_for(ADDRESSES["Treasury"], joined.topic0) is None
    dispatcher_set = bytes.fromhex(SPEC_TOPIC0["DispatcherSet"])
    pay = table.decoder_for(ADDRESSES["ChallengePay"], dispatcher_set)
    registry = table.decoder_for(ADDRESSES["ChallengeTaskRegistry"], dispatcher_set)
    assert (pay.contract, [i.name for i in pay.abi.inputs]) == ("ChallengePay", ["addr", "enabled"])
    assert (registry.contract, [i.name for i in registry.abi.inputs]) == ("ChallengeTaskRegistry",
                                                                          ["dispatcher", "allowed"])
    assert table.decoder_for("0x" + "99" * 20, joined.topic0) is None
    assert set(table.addresses) == set(ADDRESSES.values())
    assert len(table.topic0s) == len(SPEC_TOPIC0)


def test_a_log_that_does_not_fit_its_abi_is_refused():
    table = build_decoder_table(ADDRESSES, spec_events())
    joined = spec_events()["ChallengePay"][1]
    log = raw_log(ADDRESSES["ChallengePay"], joined, {"id": 1, "user": USER, "amount": 3})
    decoder = table.decoder_for(ADDRESSES["ChallengePay"], joined.topic0)
    with pytest.raises(UndecodableLog):
        decoder.decode(RawLog(log.address, log.topics[:2], log.data, 1, "0x", "0x", 0, 0))
    with pytest.raises(UndecodableLog):
        decoder.decode(RawLog(log.address, log.topics, log.data[:10], 1, "0x", "0x", 0, 0))


def test_a_deployment_missing_a_contract_is_refused():
    with pytest.raises(CatalogueError):
        build_decoder_table({k: v for k, v in ADDRESSES.items() if k != "Treasury"}, spec_events())


def test_the_committed_chain_event_schema_is_the_generated_one():
    assert schema_path().read_text() == render(chain_event_schema())


def test_chain_events_and_retractions_round_trip_through_avro():
    table = build_decoder_table(ADDRESSES, spec_events())
    serde = EventSerde()
    for role, abis in spec_events().items():
        for abi in abis:
            args = {param.name: sample_value(param.type, i) for i, param in enumerate(abi.inputs)}
            decoded = table.decoder_for(ADDRESSES[role], abi.topic0).decode(raw_log(ADDRESSES[role], abi, args))
            message = chain_event(31337, decoded, "9", "9", 1_700_000_000)
            for sent in (message, retraction(message)):
                envelope = {"event_id": sent.event_id, "occurred_at": sent.occurred_at, "producer": "test"}
                event = serde.decode(serde.encode("t", sent.event_type, envelope, sent.payload))
                assert event.event_id == "31337:" + "0x" + "0b" * 32 + ":" + "0x" + "0c" * 32 + ":0"
                assert event.payload["args"] == decoded.args
                assert event.payload["event"] == abi.name
                assert event.payload["removed"] is (sent is not message)
    json.loads(schema_path().read_text())  # valid JSON on disk


def test_static_fast_path_agrees_with_eth_abi_and_refuses_bad_padding():
    import random

    from eth_abi import decode as abi_decode

    from indexers.chain.abi import value_converter

    rng = random.Random(7)
    table = build_decoder_table(ADDRESSES, spec_events())
    for role, abis in spec_events().items():
        for abi in abis:
            plain = [p for p in abi.inputs if not p.indexed]
            if not plain or any(p.type == "string" for p in plain):
                continue
            decoder = table.decoder_for(ADDRESSES[role], abi.topic0)
            for _ in range(50):
                args = {p.name: sample_value(p.type, rng.randrange(200)) for p in abi.inputs}
                log = raw_log(ADDRESSES[role], abi, args)
                reference = abi_decode([p.type for p in plain], log.data)
                decoded = decoder.decode(log).args
                assert [decoded[p.name] for p in plain] == [
                    value_converter(p.type)(v) for p, v in zip(plain, reference, strict=True)]
            narrow = next((i for i, p in enumerate(plain) if p.type in ("address", "bool", "uint8", "uint16",
                                                                        "uint32", "uint64")), None)
            if narrow is not None:
                bad = bytearray(log.data)
                bad[32 * narrow] = 0xFF  # a high byte the type cannot hold
                with pytest.raises(UndecodableLog):
                    decoder.decode(RawLog(log.address, log.topics, bytes(bad), 1, "0x", "0x", 0, 0))


def test_dynamic_data_is_checked_and_invalid_utf8_does_not_halt():
    from eth_abi import encode as abi_encode

    table = build_decoder_table(ADDRESSES, spec_events())
    revealed = spec_events()["AIVMInferenceV2"][2]
    decoder = table.decoder_for(ADDRESSES["AIVMInferenceV2"], revealed.topic0)
    log = raw_log(ADDRESSES["AIVMInferenceV2"], revealed,
                  {"requestId": 1, "worker": USER, "responseHash": b"\x01" * 32, "response": "ok"})
    invalid_utf8 = abi_encode(["bytes32", "bytes"], [b"\x01" * 32, b"\xff\xfeok"])
    decoded = decoder.decode(RawLog(log.address, log.topics, invalid_utf8, 1, "0x", "0x", 0, 0))
    assert decoded.args["response"] == "\ufffd\ufffdok"
    for broken in (log.data[:-32],  # the string's bytes cut off
                   log.data[:32] + (10**6).to_bytes(32, "big") + log.data[64:],  # offset outside the data
                   log.data[:-1] + b"\x01"):  # non-zero padding after the string
        with pytest.raises(UndecodableLog):
            decoder.decode(RawLog(log.address, log.topics, broken, 1, "0x", "0x", 0, 0))
