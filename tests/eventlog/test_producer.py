"""The producer helper keeps every write durable: idempotent and acks=all, whatever a caller adds."""

from __future__ import annotations

import pytest

from cli.settings import Settings
from eventlog.producer import DURABILITY, EventProducer


@pytest.mark.parametrize("weaker", [{"acks": "1"}, {"enable.idempotence": False}, {"acks": "all"}])
def test_callers_cannot_change_acks_or_idempotence(weaker: dict) -> None:
    with pytest.raises(ValueError, match="stay as the producer helper sets them"):
        EventProducer(Settings.from_env({}), "test", extra_config=weaker)


def test_other_settings_may_be_added() -> None:
    assert DURABILITY == {"enable.idempotence": True, "acks": "all"}
    EventProducer(Settings.from_env({}), "test", extra_config={"message.max.bytes": 32 * 1024 * 1024}).close()
