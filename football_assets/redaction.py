"""DATABASE_URL in every form libpq accepts: parse it, hide its password, scrub its secrets from
text. No Dagster and no project import, so the CLI and logging set-up can use it first."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL

EXAMPLE = "postgresql://user:password@host:5432/dbname (or host=host port=5432 dbname=dbname ...)"
SECRET_KEYS = frozenset({"password", "sslpassword"})
# Shorter secrets are not scrubbed by value: masking every "pw" or "abc" in all text would mangle
# unrelated output while hiding almost nothing. Where they sit in a URL they are still masked.
MIN_SECRET_LENGTH = 4
MASK = "***"

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9.+-]*)://")
# Userinfo password, up to the last "@" before the path, so an unencoded "@" stays inside it.
_USERINFO_PW = re.compile(r"[A-Za-z][A-Za-z0-9.+-]*://[^:@/\s]*:([^/\s]*)@")
# Only for values libpq rejects: up to the last "@" at all, over-masking rather than leaking.
_USERINFO_PW_GREEDY = re.compile(r"[A-Za-z][A-Za-z0-9.+-]*://[^:@/\s]*:(\S*)@")
_QUERY_PARAM = re.compile(r"[?&]([^=&#\s]*)=([^&#]*)")
# A libpq key/value pair: backslash escapes apply, an unterminated quote runs to the end.
_KV_PARAM = re.compile(r"(?<!\S)([\w%]+)\s*=\s*('((?:[^'\\]|\\.)*)'?|(?:[^\s\\]|\\.)*)", re.S)
_BACKSLASH_ESCAPE = re.compile(r"\\(.)", re.S)


class DatabaseUrlError(ValueError):
    """DATABASE_URL is unusable. The message is one line and never quotes the value."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"DATABASE_URL {problem}; expected e.g. {EXAMPLE}")


def _libpq_params(value: str) -> dict[str, str]:
    """libpq's own reading of the value, after mapping SQLAlchemy scheme variants to postgresql://."""
    if not value:
        raise DatabaseUrlError("is empty")
    scheme = _SCHEME.match(value)
    if scheme:
        name = scheme.group(1).lower()
        if name.split("+", 1)[0] not in ("postgresql", "postgres"):
            raise DatabaseUrlError(f"uses the {name}:// scheme, but the warehouse needs PostgreSQL")
        value = "postgresql://" + value[scheme.end() :]
    try:
        return {key: str(val) for key, val in conninfo_to_dict(value).items()}
    except (psycopg.Error, UnicodeError) as exc:
        reason = str(exc)
    # Raised outside the except block so no __context__ carries libpq's message, which quotes
    # the input. Only libpq's fixed wording before its first quote is kept.
    if reason.startswith('missing "=" after'):
        raise DatabaseUrlError("is neither a postgresql:// URL nor a libpq key=value string")
    head = reason.splitlines()[0].split('"', 1)[0].strip(' :"') if reason else ""
    raise DatabaseUrlError(f"could not be parsed by libpq ({head or 'unreadable'})")


def parse_database_url(value: str) -> URL:
    """The warehouse's URL (driver postgresql+psycopg) from any form libpq accepts."""
    params = _libpq_params(value.strip())
    host, port = params.pop("host", ""), params.pop("port", "")
    for part in port.split(","):
        if part and not (part.isdigit() and 1 <= int(part) <= 65535):
            raise DatabaseUrlError("has a port that is not a number from 1 to 65535")
    if "," in host + port or host.startswith(("/", "@")):
        # Several hosts, or a Unix socket directory: URL's host/port cannot hold these, but
        # psycopg passes query parameters to libpq unchanged.
        params.update({k: v for k, v in (("host", host), ("port", port)) if v})
        host, port = "", ""
    return URL.create(
        "postgresql+psycopg",
        username=params.pop("user", "") or None,
        password=params.pop("password", "") or None,
        host=host or None,
        port=int(port) if port else None,
        database=params.pop("dbname", "") or None,
        query=params,
    )


def _secret_spans(value: str, *, rejected: bool) -> list[tuple[int, int, str, str]]:
    """(start, end, spelling without quotes, decoded) of each password written in the value.

    For a value libpq rejected, match loosely (a misspelt `pasword=` is still a password).
    """

    def is_secret(key: str) -> bool:
        key = unquote(key).lower()  # libpq percent-decodes query keys too: ?%70assword=
        return key in SECRET_KEYS or (rejected and ("pas" in key or "pw" in key))

    spans = []
    for m in (_USERINFO_PW_GREEDY if rejected else _USERINFO_PW).finditer(value):
        spans.append((*m.span(1), m.group(1), unquote(m.group(1))))
    for m in _QUERY_PARAM.finditer(value):
        if is_secret(m.group(1)):
            spans.append((*m.span(2), m.group(2), unquote(m.group(2))))
    for m in _KV_PARAM.finditer(value):
        if is_secret(m.group(1)):
            inner = m.group(2) if m.group(3) is None else m.group(3)
            spans.append((*m.span(2), inner, _BACKSLASH_ESCAPE.sub(r"\1", inner)))
    return spans


def database_url_secrets(value: str) -> list[str]:
    """Every secret in the value: decoded, and as spelled in it (percent-encoded, quoted)."""
    value = value.strip()
    found: list[str] = []
    try:
        params: dict[str, str] | None = _libpq_params(value)
    except DatabaseUrlError:
        params = None
    if params:
        found += [params.get(key, "") for key in sorted(SECRET_KEYS)]
    for start, end, inner, decoded in _secret_spans(value, rejected=params is None):
        found += [decoded, value[start:end], inner]
    return [s for s in dict.fromkeys(found) if s]


def redact_database_url(value: str) -> str:
    """Where the database is, for humans: a normalised URL with any password shown as ***."""
    value = value.strip()
    scrubber = SecretScrubber(database_url_secrets(value))
    try:
        url = parse_database_url(value)
    except DatabaseUrlError:
        # Best effort: the raw value with every password spelling we can recognise masked.
        out, pos = [], 0
        for start, end, *_ in sorted(_secret_spans(value, rejected=True)):
            if start >= pos:  # overlapping spans are already inside the previous mask
                out += [value[pos:start], MASK]
            pos = max(pos, end)
        return scrubber.scrub("".join(out) + value[pos:])
    shown = url.set(drivername="postgresql")
    if url.password:
        shown = shown.set(username=url.username or "", password=MASK)
    if "sslpassword" in url.query:
        shown = shown.update_query_dict({"sslpassword": MASK})
    scheme, rest = shown.render_as_string(hide_password=False).split("://", 1)
    # A password reused as user or database name is masked there too (scheme left readable).
    return f"{scheme}://{scrubber.scrub(rest.replace(quote(MASK, safe=''), MASK))}"


class SecretScrubber:
    """Replaces known secrets, raw, percent-encoded or JSON-escaped, with ***.

    Secrets shorter than MIN_SECRET_LENGTH are ignored (see there).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        spellings: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                spellings |= {
                    secret,
                    quote(secret, safe=""),
                    json.dumps(secret)[1:-1],
                    json.dumps(secret, ensure_ascii=False)[1:-1],
                }
        # One alternation, longest first: a secret that contains another is masked whole, and
        # text already replaced is never matched again.
        ordered = sorted(spellings, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def scrub(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text
