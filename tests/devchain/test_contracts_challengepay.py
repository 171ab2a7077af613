"""ChallengePay and Treasury behaviour the pipeline depends on, with real transactions on anvil."""

from __future__ import annotations

from kits.contracts import args_of, gas_cost, payout, reverts

from devchain.deploy import DeployOptions
from devchain.scenario import ETHER, Scenario

FEES = DeployOptions()
ACTIVE, FINALIZED, CANCELED = 0, 1, 2
SUCCESS, FAIL = 1, 2


def _challenge(drive: Scenario, index: int) -> dict:
    view = drive.client.call(drive.system.pay, "getChallenge", index)
    names = ("id", "kind", "status", "outcome", "creator", "currency", "token", "stake", "joinClosesTs", "startTs",
             "duration", "maxParticipants", "pool", "participantsCount", "verifier", "proofDeadlineTs",
             "winnersCount", "winnersPool", "paused", "canceled", "payoutsDone")
    return dict(zip(names, view, strict=True))


def _standard_params(drive: Scenario, **overrides: object) -> tuple:
    now = drive.now()
    fields = {"kind": 1, "currency": 0, "token": "0x" + "00" * 20, "stake": ETHER, "join": now + 100,
              "start": now + 120, "duration": 600, "max": 0, "verifier": drive.system.verifier.address,
              "proof": now + 120 + 600 + 600, "external": b"\x00" * 32}
    fields.update(overrides)
    return tuple(fields.values())


def test_create_and_join_book_contributions_and_fund_the_bucket(drive: Scenario):
    p = drive.players
    c = drive.create_challenge(creator=p[0], stake=2 * ETHER)
    drive.join(c, p[1], ETHER)
    drive.join(c, p[1], ETHER)  # contributions add up; the participant is counted once
    drive.join(c, p[2], 3 * ETHER)

    assert c.id == 2  # ids 0 and 1 are reserved
    view = _challenge(drive, c.id)
    assert (view["status"], view["pool"], view["participantsCount"]) == (ACTIVE, 7 * ETHER, 3)
    assert drive.client.call(drive.system.pay, "contribOf", c.id, p[1].address) == 2 * ETHER
    assert drive.client.call(drive.system.treasury, "bucketEthBalance", c.id) == 7 * ETHER
    assert drive.client.w3.eth.get_balance(drive.system.treasury.address) == 7 * ETHER


def test_create_validates_times_and_value(drive: Scenario):
    pay, creator = drive.system.pay, drive.players[0]
    now = drive.now()
    cases = {
        "StartTooSoon": _standard_params(drive, start=now - 1, join=now - 2),
        "LeadTimeOutOfBounds": _standard_params(drive, start=now + 10, join=now + 5, proof=now + 10_000),
        "JoinClosesAfterStart": _standard_params(drive, join=now + 500),
        "DeadlineRequired": _standard_params(drive, proof=0),
        "ProofDeadlineBeforeEnd": _standard_params(drive, proof=now + 120 + 599),
        "ZeroAddress": _standard_params(drive, verifier="0x" + "00" * 20),
    }
    for error, params in cases.items():
        with reverts(error):
            drive.client.send(pay, "createChallenge", params, sender=creator, value=ETHER)
    with reverts("WrongMsgValue"):
        drive.client.send(pay, "createChallenge", _standard_params(drive), sender=creator, value=ETHER - 1)


def test_join_window_closes_and_pause_blocks_joining(drive: Scenario):
    p = drive.players
    c = drive.create_challenge(creator=p[0])
    drive.pause(c.id, True)
    with reverts("ChallengePaused"):
        drive.join(c, p[1])
    drive.pause(c.id, False)
    drive.join(c, p[1])
    drive.advance_to(c.join_closes_ts)
    with reverts("JoinWindowClosed"):
        drive.join(c, p[2])
    with reverts("AmountZero"):
        drive.join(c, p[2], 0)


def test_proofs_only_inside_the_proof_window(drive: Scenario):
    p = drive.players
    c = drive.create_challenge(creator=p[0])
    with reverts("ProofNotOpen"):
        drive.submit_failing_proof(c, p[0].address)
    drive.advance_to(c.start_ts)
    with reverts("NotEligible"):  # p[1] never joined
        drive.submit_failing_proof(c, p[1].address)
    receipt = drive.submit_failing_proof(c, p[0].address)
    submitted = args_of(drive.system.pay.events.ParticipantProofSubmitted, receipt)[0]
    assert (submitted["participant"], submitted["ok"]) == (p[0].address, False)
    drive.advance_to(c.proof_deadline_ts + 1)
    with reverts("ProofWindowClosed"):
        drive.submit_failing_proof(c, p[0].address)


def test_submit_proof_for_is_dispatcher_or_admin_only(drive: Scenario):
    p, roles = drive.players, drive.roles
    c = drive.create_challenge(creator=p[0])
    drive.advance_to(c.start_ts)
    for outsider in (p[0], p[1], roles.validators[0], roles.protocol):
        with reverts("NotAdmin"):
            drive.submit_proof(c.id, p[0].address, b"\x00" * 416, sender=outsider)
    drive.submit_proof(c.id, p[0].address, b"\x00" * 416, sender=roles.finalizer)  # dispatcher
    drive.submit_proof(c.id, p[0].address, b"\x00" * 416, sender=roles.admin)  # admin
    drive.set_pay_dispatcher(roles.finalizer.address, False)
    with reverts("NotAdmin"):
        drive.submit_proof(c.id, p[0].address, b"\x00" * 416, sender=roles.finalizer)


def test_finalize_waits_for_the_end_and_the_proof_deadline(drive: Scenario):
    c = drive.create_challenge(creator=drive.players[0], proof_window=900)
    with reverts("BeforeDeadline"):
        drive.finalize(c.id)
    drive.advance_to(c.end_ts)
    with reverts("BeforeDeadline"):  # ended, but the proof window is still open
        drive.finalize(c.id)
    drive.advance_to(c.proof_deadline_ts)
    drive.finalize(c.id)
    with reverts("AlreadyFinalized"):
        drive.finalize(c.id)


def test_no_winner_means_outcome_fail_and_the_forfeit_goes_to_the_protocol(drive: Scenario):
    p, roles = drive.players, drive.roles
    c = drive.create_challenge(creator=p[0], stake=ETHER)
    drive.join(c, p[1], ETHER)
    drive.advance_to(c.start_ts)
    drive.submit_failing_proof(c, p[1].address)
    drive.advance_to(c.proof_deadline_ts)
    receipt = drive.finalize(c.id)

    finalized = args_of(drive.system.pay.events.Finalized, receipt)[0]
    assert (finalized["status"], finalized["outcome"]) == (1, FAIL)
    view = _challenge(drive, c.id)
    assert (view["status"], view["outcome"], view["payoutsDone"], view["pool"]) == (FINALIZED, FAIL, True, 0)
    expected = payout(2 * ETHER, 0, FEES.forfeit_fee_bps, FEES.protocol_bps, FEES.creator_bps, FEES.cashback_bps)
    allowance = drive.client.call(drive.system.treasury, "ethAllowanceOf", c.id, roles.protocol.address)
    assert allowance == expected.protocol_amt + expected.distributable
    with reverts("NotEligible"):
        drive.claim_winner(c.id, p[1])
    drive.claim_loser(c.id, p[1])  # cashback only
    assert drive.client.call(drive.system.treasury, "ethAllowanceOf", c.id, p[1].address) == expected.loser(ETHER)


def test_one_winner_means_success_and_claims_pay_the_spec_amounts(drive: Scenario):
    p, roles = drive.players, drive.roles
    c = drive.create_challenge(creator=p[0], stake=ETHER)
    drive.join(c, p[1], 2 * ETHER)
    drive.join(c, p[2], ETHER)
    drive.join(c, p[3], ETHER)
    drive.advance_to(c.start_ts)
    marked = drive.mark_winner(c, p[1].address)
    winner = args_of(drive.system.pay.events.WinnerMarked, marked)[0]
    assert (winner["contrib"], winner["winnersPool"], winner["winnersCount"]) == (2 * ETHER, 2 * ETHER, 1)
    drive.submit_failing_proof(c, p[2].address)
    drive.advance_to(c.proof_deadline_ts)
    outcome = args_of(drive.system.pay.events.Finalized, drive.finalize(c.id))[0]["outcome"]
    assert outcome == SUCCESS

    expected = payout(5 * ETHER, 2 * ETHER, FEES.forfeit_fee_bps, FEES.protocol_bps, FEES.creator_bps,
                      FEES.cashback_bps)
    treasury = drive.system.treasury
    assert drive.client.call(treasury, "ethAllowanceOf", c.id, roles.protocol.address) == expected.protocol_amt
    assert drive.client.call(treasury, "ethAllowanceOf", c.id, p[0].address) == expected.creator_amt

    claimed = args_of(drive.system.pay.events.WinnerClaimed, drive.claim_winner(c.id, p[1]))[0]
    assert claimed["amount"] == expected.winner(2 * ETHER) > 2 * ETHER
    before = drive.client.w3.eth.get_balance(p[1].address)
    receipt = drive.treasury_claim_eth(c.id, p[1])
    paid = args_of(drive.system.treasury.events.ClaimedETH, receipt)[0]
    assert (paid["bucketId"], paid["to"], paid["amount"]) == (c.id, p[1].address, expected.winner(2 * ETHER))
    assert drive.client.w3.eth.get_balance(p[1].address) == before + expected.winner(2 * ETHER) - gas_cost(receipt)

    loser = args_of(drive.system.pay.events.LoserClaimed, drive.claim_loser(c.id, p[2]))[0]
    assert loser["amount"] == expected.loser(ETHER) > 0
    with reverts("NotEligible"):
        drive.claim_winner(c.id, p[1])  # claimed once already
    with reverts("NotEligible"):
        drive.claim_loser(c.id, p[1])  # a winner is no loser
    with reverts("AllowanceTooLow"):
        drive.client.send(treasury, "claimETH", c.id, 1, sender=p[1])  # allowance spent

    # what winners and losers can take never exceeds what the bucket holds
    total = (expected.winner(2 * ETHER) + 3 * expected.loser(ETHER) + expected.protocol_amt + expected.creator_amt)
    assert total <= 5 * ETHER


def test_a_winner_cannot_be_marked_twice_and_blocks_cancel(drive: Scenario):
    p = drive.players
    c = drive.create_challenge(creator=p[0])
    drive.advance_to(c.start_ts)
    inference = drive.verified_inference(c.id, p[0].address)
    proof = drive.proof(c.id, p[0].address, inference)
    drive.submit_proof(c.id, p[0].address, proof)
    with reverts("AlreadyWinner"):
        drive.submit_proof(c.id, p[0].address, proof)
    with reverts("AlreadyWinner"):
        drive.cancel(c.id)


def test_auto_distribute_pays_wallets_directly(drive: Scenario):
    p = drive.players
    c = drive.create_challenge(creator=p[0], stake=ETHER)
    drive.join(c, p[1], ETHER)
    drive.join(c, p[2], ETHER)
    drive.advance_to(c.start_ts)
    drive.mark_winner(c, p[1].address)
    drive.advance_to(c.proof_deadline_ts)
    drive.finalize(c.id)
    expected = payout(3 * ETHER, ETHER, FEES.forfeit_fee_bps, FEES.protocol_bps, FEES.creator_bps,
                      FEES.cashback_bps)
    before = {a.address: drive.client.w3.eth.get_balance(a.address) for a in p[:3]}

    receipt = drive.auto_distribute(c.id, [p[1].address, p[2].address], [p[2].address, p[1].address])

    after = {a.address: drive.client.w3.eth.get_balance(a.address) for a in p[:3]}
    assert after[p[1].address] - before[p[1].address] == expected.winner(ETHER)
    assert after[p[2].address] - before[p[2].address] == expected.loser(ETHER)
    assert after[p[0].address] == before[p[0].address]  # not listed: nothing paid
    done = args_of(drive.system.pay.events.AutoDistributed, receipt)[0]
    assert (done["winnersCount"], done["losersCount"]) == (1, 1)
    with reverts("NotEligible"):
        drive.claim_winner(c.id, p[1])


def test_cancel_then_refunds(drive: Scenario):
    p = drive.players
    c = drive.create_challenge(creator=p[0], stake=ETHER)
    drive.join(c, p[1], 2 * ETHER)
    drive.join(c, p[2], 3 * ETHER)
    with reverts("NotCreatorOrAdmin"):
        drive.cancel(c.id, by=p[1])
    with reverts("ChallengeNotFinalized"):
        drive.claim_refund(c.id, p[1])
    drive.cancel(c.id, by=p[0])
    with reverts("AlreadyCanceled"):
        drive.cancel(c.id)
    assert _challenge(drive, c.id)["status"] == CANCELED

    refund = args_of(drive.system.pay.events.RefundClaimed, drive.claim_refund(c.id, p[1]))[0]
    assert refund["amount"] == 2 * ETHER
    before = drive.client.w3.eth.get_balance(p[2].address)
    receipt = drive.auto_refund(c.id, [p[2].address, p[1].address, p[3].address])
    assert drive.client.w3.eth.get_balance(p[2].address) - before == 3 * ETHER
    assert args_of(drive.system.pay.events.AutoRefunded, receipt)[0]["count"] == 1
    with reverts("NotEligible"):
        drive.claim_refund(c.id, p[2])
    with reverts("ChallengeNotFinalized"):
        drive.claim_winner(c.id, p[1])


def test_erc20_stake_is_refunded_in_tokens_with_claimed_erc20(drive: Scenario):
    p, token = drive.players, drive.system.token
    c = drive.create_challenge(creator=p[0], stake=5 * ETHER, currency="erc20")
    drive.join(c, p[1], 2 * ETHER)
    assert drive.client.call(token, "balanceOf", drive.system.treasury.address) == 7 * ETHER
    with reverts("TokenNotAllowed"):
        drive.client.send(drive.system.pay, "joinChallengeNative", c.id, sender=p[2], value=ETHER)
    drive.cancel(c.id, by=p[0])
    drive.claim_refund(c.id, p[1])
    receipt = drive.treasury_claim_erc20(c.id, p[1])

    claimed = args_of(drive.system.treasury.events.ClaimedERC20, receipt)[0]
    assert (claimed["bucketId"], claimed["token"], claimed["to"], claimed["amount"]) == (
        c.id, token.address, p[1].address, 2 * ETHER)
    assert drive.client.call(token, "balanceOf", p[1].address) == 2 * ETHER


def test_finalize_of_a_never_created_id_is_tolerated_like_the_original(drive: Scenario):
    receipt = drive.finalize(77)
    finalized = args_of(drive.system.pay.events.Finalized, receipt)[0]
    assert (finalized["id"], finalized["status"], finalized["outcome"]) == (77, 1, FAIL)
    booked = args_of(drive.system.pay.events.FeesBooked, receipt)[0]
    assert booked["id"] == 0  # the original reads the id from the (empty) storage slot


def test_fees_are_snapshotted_at_creation_and_no_cashback_means_no_loser_claim(drive: Scenario):
    p = drive.players
    c = drive.create_challenge(creator=p[0], stake=ETHER)
    drive.client.send(drive.system.pay, "setFeeConfig", (1_000, 600, 300, 0), sender=drive.roles.admin)
    no_cashback = drive.create_challenge(creator=p[0], stake=ETHER)
    # created a block or more later, so its deadline can be a second or more after the first one's
    drive.advance_to(max(c.proof_deadline_ts, no_cashback.proof_deadline_ts))
    drive.finalize(c.id)
    drive.finalize(no_cashback.id)
    drive.claim_loser(c.id, p[0])  # created under the 5 % cashback config
    with reverts("NotEligible"):
        drive.claim_loser(no_cashback.id, p[0])
    with reverts("InvalidBounds"):  # protocol + creator shares must fit in the forfeit fee
        drive.client.send(drive.system.pay, "setFeeConfig", (1_000, 600, 500, 0), sender=drive.roles.admin)


def test_external_id_is_single_use(drive: Scenario):
    external = b"\x01" * 32
    first = drive.create_challenge(external_id=external)
    assert drive.client.call(drive.system.pay, "idByExternalId", external) == first.id
    with reverts("ExternalIdAlreadyUsed"):
        drive.create_challenge(external_id=external)
