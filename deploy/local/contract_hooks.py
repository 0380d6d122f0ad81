"""schemathesis hooks of the contract test (deploy/local/contract.sh sets SCHEMATHESIS_HOOKS).

A `cursor` is opaque to clients (format "cursor" in the OpenAPI document): only a page's
`next_cursor` is valid. To send well-formed ones, generate them the way the services encode them
(nexus_kernel::paging::Cursor): unpadded base64url of a small JSON key. One object carries the
fields of every key kind (newest-first `at`/`id`, report offset `o`, the CRM task list's
`done`/`due_at`/`id`, an import's errors' `line`/`field`, churn scores' `s`/`k`); each decoder
reads its own.
"""

import ast
import base64
import json
import threading
from datetime import datetime, timezone

import schemathesis
from hypothesis import strategies as st


# CPython 3.11 keeps one AST-construction depth counter per interpreter, so two threads parsing at
# once (hypothesis describes lambdas with `ast.parse`; contract.toml runs two workers) can trip
# "SystemError: AST constructor recursion depth mismatch" — a run error, not an API failure. One
# parse at a time keeps the workers and removes the race.
_parse = ast.parse
_parse_lock = threading.Lock()


def _serial_parse(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _serial_parse


def _encode(at, key_id, offset, done):
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    key = {
        "at": stamp,
        "id": str(key_id),
        "o": offset,
        "done": done,
        "due_at": stamp,
        "line": offset,
        "field": "phone",
        "s": offset / 10_000,
        "k": str(key_id),
    }
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


schemathesis.openapi.format(
    "cursor",
    st.builds(
        _encode,
        st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(timezone.utc)),
        st.uuids(),
        st.integers(min_value=0, max_value=10_000),
        st.booleans(),
    ),
)


# Post media uploads are raw files (`POST /v1/ads/media`, declared video/mp4): bytes that start
# like an MP4 (an `ftyp` box, then whatever follows) or are not one at all, so both the measuring
# and the refusals (400, 415) are reached.
schemathesis.openapi.media_type(
    "video/mp4",
    st.one_of(
        st.binary(max_size=256).map(lambda rest: b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + rest),
        st.binary(max_size=256),
    ),
)


@schemathesis.hook
def before_load_schema(context, raw_schema):
    """The document's example of a raw file body is text (JSON holds no bytes), and a body of a
    media type with its own strategy must be bytes: the generated files above stand in for it."""
    for item in raw_schema.get("paths", {}).values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            content = op.get("requestBody", {}).get("content", {})
            if "video/mp4" in content:
                content["video/mp4"].pop("example", None)
                content["video/mp4"].pop("examples", None)
