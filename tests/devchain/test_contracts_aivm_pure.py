"""The pure AIVM/proof helpers reproduce the spec's test vectors (spec Appendix A)."""

from __future__ import annotations

from eth_utils import keccak

from chain import aivm

REAL_AIVM = "0x2d499C52312ca8F0AD3B7A53248113941650bA7E"
SUBJECT = "0x95A4CE3c93dBcDb9b3CdFb4CCAE6EFBDb4cCA217"
TASK_1 = bytes.fromhex("def28516618eea013b239c6ce9a5f273020d11a20f8f236d77af47895ddf386a")


def test_task_id_for_request_1_on_lightchain_testnet():
    assert aivm.task_id_for(504, REAL_AIVM, 1) == TASK_1


def test_eip712_domain_separator_and_its_parts():
    assert aivm.DOMAIN_TYPEHASH.hex() == "8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f"
    assert keccak(text=aivm.DOMAIN_NAME).hex() == "3df1f2369e7921d13ff478483c1b940ffa1398e76feaa00fd3f8c8995e855059"
    assert keccak(text=aivm.DOMAIN_VERSION).hex() == "c89efdaa54c0f20c7adf612882df0950f5a951637e0307cdcb4c672f298b8bc6"
    assert aivm.POI_TYPEHASH.hex() == "14f491af888582cfc3d0a80059e99efb2cf632de5e9e203151918e622de48c5c"
    assert aivm.domain_separator(504, REAL_AIVM).hex() == (
        "9618cf703c69ba8952b7b6c0054517eb455618216717cd685d22a419a075a982")


def test_canonical_result_hashes():
    assert aivm.response_hash(aivm.canonical_response(2)).hex() == (
        "caef516cde96a75cd31bfa5e617df3effa347980513b3195a7607efff2cef64a")
    assert aivm.response_hash(aivm.canonical_response(42)).hex() == (
        "2f2bdc4f4fbecbda0862175edf40ca9be719b6568a783cc41a0036c3c9d08c83")


def test_prompt_id():
    assert aivm.prompt_id(42, SUBJECT).hex() == "ad3b6ff035210ba35a2e6dc35d846c8d77a4df17800c92d53ae15c3a94dab020"


def test_proof_encoding_is_13_words_without_offset():
    proof = aivm.AivmPoiProofV1(
        1, 1, TASK_1, 42, SUBJECT, True, 0, keccak(text="evidence"), keccak(text="bench"), aivm.ZERO32,
        1767225600, keccak(text="model"), keccak(text="params"),
    ).encode()
    words = [proof[i:i + 32].hex() for i in range(0, len(proof), 32)]
    assert len(proof) == 416
    assert int(words[0], 16) == 1 and int(words[1], 16) == 1 and words[2] == TASK_1.hex()
    assert int(words[3], 16) == 42
    assert words[4] == "00" * 12 + "95a4ce3c93dbcdb9b3cdfb4ccae6efbdb4cca217"
    assert int(words[5], 16) == 1 and int(words[6], 16) == 0
    assert words[7] == "97794b46b3afe9245d61058666381907ac8a35b0e3bce564cde9dd0eea648cb6"
    assert words[8] == "be3e6c116bba9c49895cc92be713452dd1eb8370389080b591e534ff599d2b39"
    assert int(words[9], 16) == 0 and words[10].endswith("6955b900")
    assert words[11] == "191185346d2996711dd761c502ee7036b7bbf81137b5ba67ab29c6b6f57570a9"
    assert words[12] == "b40d1b5f6b77d2ba0d8b0410e0f8e6dfe0005ee7b9331709c2b66ef586805410"


def test_commitment_preimage_is_116_packed_bytes():
    worker = "0x" + "11" * 20
    secret, result = keccak(text="s"), keccak(text="r")
    expected = keccak((7).to_bytes(32, "big") + bytes.fromhex("11" * 20) + secret + result)
    assert aivm.commitment(7, worker, secret, result) == expected
