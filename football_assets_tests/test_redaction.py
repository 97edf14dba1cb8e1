"""DATABASE_URL parsing and redaction: no form of the password may reach output, errors or logs."""

from __future__ import annotations

import json
import traceback
from urllib.parse import quote

import pytest

from football_assets.redaction import (
    DatabaseUrlError,
    SecretScrubber,
    database_url_secrets,
    parse_database_url,
    redact_database_url,
)

CANARY = "Canary-pw-7Q3x"  # distinctive, so any leak is unambiguous
ODD = "p@ss:w/rd%"  # must be percent-encoded in a URL
ODD_ENC = quote(ODD, safe="")  # p%40ss%3Aw%2Frd%25
SSL_CANARY = "Ssl-canary-5Kp"
QUOTED = f"{CANARY} x'y"  # needs libpq quoting in a key/value string
QUOTED_KV = "'" + QUOTED.replace("'", "\\'") + "'"


def spellings(secret: str) -> set[str]:
    """Every way the secret can appear in text: raw, percent-encoded, JSON, libpq-quoted."""
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        json.dumps(secret)[1:-1],
        secret.replace("\\", "\\\\").replace("'", "\\'"),
    }


def assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        for spelling in spellings(secret):
            assert spelling not in text, f"{spelling!r} leaked in {text!r}"


BASE = "app@db.example:5432/football"
KV = "host=db.example port=5432 dbname=football user=app"
# name: (value, password libpq will use, its spelling in the value) for every form PostgreSQL takes.
FORMS = {
    "userinfo": (f"postgresql://app:{CANARY}@db.example:5432/football", CANARY, CANARY),
    "query": (f"postgresql://{BASE}?password={CANARY}", CANARY, CANARY),
    "query-not-first": (f"postgresql://{BASE}?sslmode=require&password={CANARY}", CANARY, CANARY),
    "keyvalue": (f"{KV} password={CANARY}", CANARY, CANARY),
    "keyvalue-spaced": (
        f"host = db.example port= 5432 dbname =football user=app password = {CANARY}",
        CANARY,
        CANARY,
    ),
    "keyvalue-quoted": (f"{KV} password={QUOTED_KV}", QUOTED, QUOTED_KV),
    "userinfo-encoded": (f"postgresql://app:{ODD_ENC}@db.example:5432/football", ODD, ODD_ENC),
    "query-encoded": (f"postgresql://{BASE}?password={ODD_ENC}", ODD, ODD_ENC),
    "keyvalue-odd": (f"{KV} password={ODD}", ODD, ODD),
    "postgres-scheme": (f"postgres://app:{CANARY}@db.example:5432/football", CANARY, CANARY),
    "psycopg-scheme": (f"postgresql+psycopg://{BASE}?password={CANARY}", CANARY, CANARY),
    "psycopg2-scheme": (
        f"postgresql+psycopg2://app:{CANARY}@db.example:5432/football",
        CANARY,
        CANARY,
    ),
}


@pytest.mark.parametrize("value, password, spelling", FORMS.values(), ids=FORMS.keys())
def test_every_form_parses_to_the_same_connection(value: str, password: str, spelling: str) -> None:
    url = parse_database_url(value)
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "app",
        password,
        "db.example",
        5432,
        "football",
    )


@pytest.mark.parametrize("value, password, spelling", FORMS.values(), ids=FORMS.keys())
def test_every_form_is_redacted(value: str, password: str, spelling: str) -> None:
    shown = redact_database_url(value)
    assert_hidden(shown, password)
    assert shown.startswith("postgresql://app:***@db.example:5432/football"), shown


@pytest.mark.parametrize("value, password, spelling", FORMS.values(), ids=FORMS.keys())
def test_every_form_yields_its_secret(value: str, password: str, spelling: str) -> None:
    secrets = database_url_secrets(value)
    # Decoded, and as spelled in the value, so value-based scrubbing catches both.
    assert password in secrets and spelling in secrets
    assert_hidden(SecretScrubber(secrets).scrub(f"connecting to {value}"), password)


def test_redacted_url_is_normalised_and_keeps_other_parameters() -> None:
    expected = "postgresql://app:***@db.example:5432/football?sslmode=require"
    userinfo = f"postgres://app:{CANARY}@db.example:5432/football?sslmode=require"
    assert redact_database_url(userinfo) == expected
    assert redact_database_url(f"postgresql://{BASE}?password={CANARY}&sslmode=require") == expected
    assert redact_database_url(f"postgresql://{BASE}?sslmode=require") == (
        "postgresql://app@db.example:5432/football?sslmode=require"  # no password, no ***
    )
    url = parse_database_url(f"postgresql://{BASE}?sslmode=require&options=-c%20search_path%3Dx")
    assert dict(url.query) == {"sslmode": "require", "options": "-c search_path=x"}


def test_sslpassword_is_a_secret() -> None:
    for value in (
        f"postgresql://app:{CANARY}@db.example/football?sslpassword={SSL_CANARY}",
        f"host=db.example user=app password={CANARY} sslpassword={SSL_CANARY}",
    ):
        assert {CANARY, SSL_CANARY} <= set(database_url_secrets(value))
        shown = redact_database_url(value)
        assert_hidden(shown, CANARY, SSL_CANARY)
        assert "sslpassword=***" in shown


def test_short_passwords_are_masked_where_the_url_holds_them() -> None:
    # Too short for value-based scrubbing, but their place in the URL is known.
    value = "postgresql://app:pw@db.example/football?sslpassword=xy"
    assert redact_database_url(value) == "postgresql://app:***@db.example/football?sslpassword=***"
    assert (
        redact_database_url("mysql://app:pw@db/x?password=xy")
        == "mysql://app:***@db/x?password=***"
    )


def test_both_url_passwords_are_secrets() -> None:
    # libpq uses the query one; the userinfo one is still a password someone typed.
    value = f"postgresql://app:{ODD_ENC}@db.example/football?password={CANARY}"
    assert parse_database_url(value).password == CANARY
    assert {CANARY, ODD, ODD_ENC} <= set(database_url_secrets(value))
    assert_hidden(redact_database_url(value), CANARY, ODD)


def test_password_reused_elsewhere_in_the_url_is_masked_there_too() -> None:
    value = f"postgresql://app:{CANARY}@db.example/{CANARY}"
    assert redact_database_url(value) == "postgresql://app:***@db.example/***"


def test_socket_directories_and_multiple_hosts_go_to_libpq_as_is() -> None:
    url = parse_database_url(f"postgresql:///football?host=/run/postgresql&password={CANARY}")
    assert (url.host, url.port, url.query["host"]) == (None, None, "/run/postgresql")
    url = parse_database_url(f"postgresql://app:{CANARY}@h1:5432,h2:5433/football")
    assert (url.host, dict(url.query)) == (None, {"host": "h1,h2", "port": "5432,5433"})
    assert_hidden(redact_database_url(f"postgresql://app:{CANARY}@h1,h2/football"), CANARY)


def test_no_secrets_when_there_is_no_password() -> None:
    assert database_url_secrets("postgresql://app@db.example/football") == []
    assert database_url_secrets("host=db.example dbname=football password=") == []


BAD = {
    "empty": "",
    "blank": "   ",
    "not-a-url": "not a database url",
    "mysql": f"mysql://app:{CANARY}@db.example/football",
    "sqlite": "sqlite:///football.db",
    "port-not-numeric": f"postgresql://app:{CANARY}@db.example:abc/football",
    "port-too-big": f"host=db.example port=99999 password={CANARY}",
    "port-zero": f"postgresql://{BASE.replace('5432', '0')}?password={CANARY}",
    "unknown-parameter": f"postgresql://app:{CANARY}@db.example/football?bogus={CANARY}",
    "unterminated-quote": f"host=db.example password='{CANARY}",
    "unknown-keyword": f"host=db.example pasword={CANARY}",
    "unencoded-password": f"postgresql://app:{ODD}@db.example:5432/football",
    "bad-percent-escape": f"postgresql://app:{CANARY}%zz@db.example/football",  # libpq echoes it
}
# libpq's message quotes this bare word; it may be a password pasted without its key.
BAD_ERRORS = {**BAD, "bare-word": f"host=db.example {CANARY}"}


@pytest.mark.parametrize("value", BAD_ERRORS.values(), ids=BAD_ERRORS.keys())
def test_bad_values_raise_one_line_errors_without_the_password(value: str) -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        parse_database_url(value)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert message.startswith("DATABASE_URL ") and "\n" not in message
    assert "postgresql://user:password@host:5432/dbname" in message  # a valid example
    # Not in the message, nor anywhere in the traceback (no chained libpq error).
    assert_hidden("".join(traceback.format_exception(caught.value)), CANARY, ODD)


def test_bad_values_say_what_is_wrong() -> None:
    def problem(value: str) -> str:
        with pytest.raises(DatabaseUrlError) as caught:
            parse_database_url(value)
        return caught.value.problem

    assert "empty" in problem("")
    assert "mysql" in problem("mysql://db/x") and "PostgreSQL" in problem("mysql://db/x")
    assert "port" in problem("host=db port=99999")
    assert "query parameter" in problem("postgresql://db/x?bogus=1")


@pytest.mark.parametrize("value", BAD.values(), ids=BAD.keys())
def test_rejected_values_are_still_redacted(value: str) -> None:
    assert_hidden(redact_database_url(value), CANARY, ODD)


def test_rejected_values_redact_readably() -> None:
    assert redact_database_url(f"mysql://app:{CANARY}@db/x") == "mysql://app:***@db/x"
    assert (
        redact_database_url(f"postgresql://app:{ODD}@db:5432/x") == "postgresql://app:***@db:5432/x"
    )
    assert ODD in database_url_secrets(f"postgresql://app:{ODD}@db:5432/x")


def test_scrubber_hides_raw_percent_encoded_and_json_spellings() -> None:
    json_secret = 'Canary"q\\7Q3x'  # JSON escapes both the quote and the backslash
    scrubber = SecretScrubber([ODD, json_secret])
    text = f"raw {ODD} encoded {ODD_ENC} json " + json.dumps({"dsn": f"x{json_secret}y"})
    scrubbed = scrubber.scrub(text)
    assert_hidden(scrubbed, ODD, json_secret)
    assert scrubbed == 'raw *** encoded *** json {"dsn": "x***y"}'


def test_scrubber_masks_longest_secret_whole_and_skips_short_ones() -> None:
    scrubber = SecretScrubber(["Canary-pw", CANARY, "abc", ""])
    assert scrubber.scrub(f"{CANARY} Canary-pw abc") == "*** *** abc"
    assert not SecretScrubber(["abc", ""])  # too short to scrub safely: no secrets at all
