"""Settings never show a password, an RPC endpoint's key-bearing path or a secret in repr or `lc config`."""

from __future__ import annotations

from cli.settings import Settings
from eventlog.config import redact_url

RPC_KEY = "k3yk3yk3yk3yk3y"


def test_urls_lose_their_password_and_endpoints_their_path():
    assert redact_url(f"https://eth-mainnet.example.com/v2/{RPC_KEY}") == "https://eth-mainnet.example.com/***"
    assert redact_url(f"https://rpc.example.com/?apikey={RPC_KEY}") == "https://rpc.example.com/***"
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert redact_url("postgresql://lc:pa55@db:5432/lightchallenge", hide_path=False) == \
        "postgresql://lc:***@db:5432/lightchallenge"
    assert redact_url("postgresql://lc@db/lightchallenge", hide_path=False) == "postgresql://lc@db/lightchallenge"


def test_settings_repr_and_describe_hide_keys_passwords_and_secrets():
    settings = Settings.from_env(rpc_url=f"https://eth-mainnet.example.com/v2/{RPC_KEY}",
                                 pg_dsn="postgresql://lc:pa55@db:5432/lightchallenge", private_key="0x" + "ab" * 32)
    shown = repr(settings) + str(settings.describe())
    assert RPC_KEY not in shown and "pa55" not in shown and "ab" * 32 not in shown
    values = {name: value for name, value, _doc, _source in settings.describe()}
    assert values["LC_RPC_URL"] == "https://eth-mainnet.example.com/***"
    assert values["LC_PG_DSN"] == "postgresql://lc:***@db:5432/lightchallenge"
    assert {n: v for n, v, _d, _s in settings.describe(mask_secrets=False)}["LC_RPC_URL"].endswith(RPC_KEY)


def test_every_section_masks_its_secrets_in_repr():
    """A section's dataclass must not generate its own repr (it would print every field in clear)."""
    from cli.settings import SECTIONS

    for section in (*SECTIONS, Settings):
        shown = repr(section.from_env(private_key="0x" + "cd" * 32, pg_dsn="postgresql://lc:pa55@db/x")
                     if hasattr(section, "private_key") else section.from_env(pg_dsn="postgresql://lc:pa55@db/x"))
        assert "pa55" not in shown and "cd" * 32 not in shown, section


def test_describe_says_where_each_value_came_from():
    settings = Settings.from_env({"LC_CHAIN_ID": "5"}, topic_prefix="t.")
    sources = {name: source for name, _value, _doc, source in settings.describe()}
    assert sources["LC_CHAIN_ID"] == "environment"
    assert sources["LC_TOPIC_PREFIX"] == "override"
    assert sources["LC_CONFIRMATIONS"] == "default"
    assert {n: s for n, _v, _d, s in settings.replace(confirmations=3).describe()}["LC_CONFIRMATIONS"] == "override"


def test_scrub_masks_every_secret_value_a_library_message_may_quote() -> None:
    from cli.settings import Settings

    settings = Settings.from_env({}, rpc_url="https://node.example/v2/KEY123?token=abc",
                                 pg_dsn="postgresql://lc:hunter2@db.example:5432/lc", private_key="0x" + "5a" * 32)
    message = ("HTTPSConnectionPool(host='node.example'): Max retries exceeded with url: /v2/KEY123?token=abc; "
               "dsn postgresql://lc:hunter2@db.example:5432/lc; key 0x" + "5a" * 32)
    scrubbed = settings.scrub(message)
    for secret in ("KEY123", "token=abc", "hunter2", "5a" * 32):
        assert secret not in scrubbed
    assert "node.example" in scrubbed and "db.example:5432/lc" in scrubbed
