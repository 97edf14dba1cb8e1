"""The live API's wire format: compact UTF-8 JSON and its documented error bodies."""

from __future__ import annotations

import json
from typing import Any

JsonDict = dict[str, Any]

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"

# Error bodies exactly as documented for the live API.
MSG_INVALID_TOKEN = "Your API token is invalid."
MSG_RESTRICTED = (
    "The resource you are looking for is restricted and apparently not within your "
    "permissions. Please check your subscription."
)
MSG_NOT_FOUND = "The resource you are looking for does not exist."


def dumps(obj: Any) -> bytes:
    # Compact UTF-8 like the live API, so clients must decode non-ASCII names themselves.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error(message: str, code: int) -> JsonDict:
    return {"message": message, "errorCode": code}


def rate_limit_error(wait_seconds: int) -> JsonDict:
    return error(f"You reached your request limit. Wait {wait_seconds} seconds.", 429)
