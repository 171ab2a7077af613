"""Helpers of the contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from web3.logs import DISCARD

from chain.client import TxReverted

BPS = 10_000
ONE = 10**18


@contextmanager
def reverts(error: str) -> Iterator[None]:
    """The block must raise TxReverted naming `error` (custom error name or require-string)."""
    with pytest.raises(TxReverted) as caught:
        yield
    assert caught.value.error == error, f"reverted with {caught.value.error!r}, expected {error!r}"


@dataclass(frozen=True)
class Payout:
    """The spec's payout math (spec §3.5), written independently of the contract."""

    protocol_amt: int
    creator_amt: int
    cashback: int
    distributable: int
    per_committed_bonus_x: int
    per_cashback_x: int

    def winner(self, principal: int) -> int:
        return principal + principal * self.per_committed_bonus_x // ONE

    def loser(self, principal: int) -> int:
        return principal * self.per_cashback_x // ONE


def payout(pool: int, winners_pool: int, forfeit_bps: int, protocol_bps: int, creator_bps: int,
           cashback_bps: int) -> Payout:
    losers_pool = pool - winners_pool
    cashback = losers_pool * cashback_bps // BPS
    after = losers_pool - cashback
    fee_gross = after * forfeit_bps // BPS
    protocol_amt = after * protocol_bps // BPS
    creator_amt = after * creator_bps // BPS
    protocol_amt += fee_gross - (protocol_amt + creator_amt)
    distributable = after - fee_gross
    bonus = distributable * ONE // winners_pool if distributable and winners_pool else 0
    per_cashback = cashback * ONE // losers_pool if cashback and losers_pool else 0
    return Payout(protocol_amt, creator_amt, cashback, distributable, bonus, per_cashback)


def gas_cost(receipt: dict) -> int:
    return receipt["gasUsed"] * receipt["effectiveGasPrice"]


def args_of(event: Any, receipt: dict) -> list[dict]:
    """The decoded args of every `event` log the event's contract emitted in the receipt (web3's decoder
    matches topic0 only, so logs of other addresses -- DispatcherSet is shared -- are filtered here)."""
    bound = event()
    return [dict(log["args"]) for log in bound.process_receipt(receipt, errors=DISCARD)
            if log["address"] == bound.address]
