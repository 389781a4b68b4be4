"""Body checks before schema validation: size (413), media type (415), UTF-8 and JSON syntax (422).

A non-UTF-8 body, malformed JSON and a body that is not JSON are refused here with their D5
code. The body is read and parsed once, here; validation and the handler use the parsed value.
"""

from __future__ import annotations

import orjson
from starlette.types import Receive

from layers_kit.mock.domain.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from layers_kit.mock.web.state import RequestState

MAX_BODY = 1024 * 1024  # D5: 1 MiB


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime, *params = [p.strip().lower() for p in content_type.split(";")]
    if not (mime == "application/json" or (mime.startswith("application/")
                                           and mime.endswith("+json"))):
        return False
    for p in params:
        name, _, value = p.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


async def read(st: RequestState, receive: Receive) -> None:
    """Read, bound and parse the body once into `st.body` (None when empty). Raises D5 errors.

    Only JSON is accepted, whether or not the operation takes a body.
    """
    headers = st.headers
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge()
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    st.body_bytes = body
    st.body_read = True
    st.body = None
    if not body:
        return
    if not _is_json(headers.get("content-type")):
        raise UnsupportedMediaType()
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed([{"path": "body", "message": "must be UTF-8 encoded"}],
                               "The request body is not UTF-8.") from None
    try:
        # The one parse of the body (orjson refuses lone surrogates and NaN, as JSON does).
        st.body = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            [{"path": "body", "message": f"is not valid JSON: {exc.msg} at line "
                                         f"{exc.lineno} column {exc.colno}"}],
            "The request body is not valid JSON.") from None


class ClientGone(Exception):
    """The client disconnected before its body arrived: nothing to answer."""
