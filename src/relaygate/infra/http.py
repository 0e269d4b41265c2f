"""Upstream HTTP I/O over one pooled aiohttp client per process.

aiohttp's client was chosen by measurement: on this project's harness ``httpx.AsyncClient`` fell to
~640 requests/s at 64 concurrent requests while aiohttp held 7–9k (docs/performance.md,
encode/httpx#3215). Low-level client errors are mapped here, once, to the provider exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from relaygate.providers.base import (
    UpstreamBodyTooLarge,
    UpstreamConnectError,
    UpstreamReadTimeout,
    UpstreamRequest,
)


def create_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
        raise_for_status=False,
    )


class HttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.content_type = response.headers.get("Content-Type", "")

    async def read(self, limit: int) -> bytes:
        try:
            length = self._response.content_length
            if length is not None and length > limit:
                raise UpstreamBodyTooLarge()
            chunks: list[bytes] = []
            size = 0
            async for chunk in self._response.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise UpstreamBodyTooLarge()
                chunks.append(chunk)
            return b"".join(chunks)
        except TimeoutError as exc:
            raise UpstreamReadTimeout() from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectError(type(exc).__name__) from exc
        finally:
            self._response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamReadTimeout() from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectError(type(exc).__name__) from exc

    def close(self) -> None:
        self._response.close()


class HttpTransport:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    def _timeout(self, connect: float, read: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get((connect, read))
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
            self._timeouts[(connect, read)] = timeout
        return timeout

    async def send(self, request: UpstreamRequest) -> HttpResponse:
        try:
            response = await self._session.request(
                request.method, request.url, headers=request.headers,
                data=request.body_chunks() if request.body_chunks is not None else (request.body or None),
                timeout=self._timeout(request.connect_timeout, request.read_timeout), allow_redirects=False,
            )
        except TimeoutError as exc:
            raise UpstreamReadTimeout() from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError: aiohttp rejects a malformed URL; the message names only the exception type.
            raise UpstreamConnectError(type(exc).__name__) from exc
        return HttpResponse(response)

