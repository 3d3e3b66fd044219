"""Reading a request body with a ceiling: refused as soon as it passes the limit, never buffered."""

from __future__ import annotations

from fastapi import Request

from greenlane.errors import GreenlaneError


async def read_body(request: Request, max_bytes: int, *, code: str = "request.too-large") -> bytes:
    """The whole body, or GreenlaneError ``code`` once it is larger than ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise GreenlaneError(
            f"the body has {declared} bytes, more than the {max_bytes} accepted", code=code
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise GreenlaneError(
                f"the body is larger than the {max_bytes} bytes accepted", code=code
            )
        chunks.append(chunk)
    return b"".join(chunks)
