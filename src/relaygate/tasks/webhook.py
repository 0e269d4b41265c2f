"""Delivering a finished task to the client's webhook, with the address checks of DESIGN §3: http(s)
only, public addresses only (checked for IP literals here, at submit and again before each delivery,
and for names on every connection by the resolver) unless the operator allows private ones, no
redirects followed, a time limit per try.

Retries are the engine's: a failed delivery leaves the task due again after a backoff, so a restart
does not lose it.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.errors import InvalidRequest
from relaygate.infra.addresses import host_allowed, parse_url, public_session
from relaygate.tasks import store
from relaygate.tasks.store import Lease, now_ms

log = logging.getLogger("relaygate.tasks")

MAX_WEBHOOK_URL = 2048
_BACKOFF_MS = 2_000


class WebhookNotAllowed(InvalidRequest):
    code = "invalid_webhook"


def check_webhook_url(url: str, *, allow_private: bool, param: str = "webhook") -> str:
    """The URL when it may be delivered to; raises ``WebhookNotAllowed`` (400) otherwise. The URL is
    read with yarl, as the client that delivers it reads it: its host is the one that is connected to
    (yarl maps ``１２７.0.0.1`` to ``127.0.0.1``, which ``urlsplit`` would keep as a name)."""
    if len(url) > MAX_WEBHOOK_URL:
        raise WebhookNotAllowed(f"'{param}' is longer than {MAX_WEBHOOK_URL} characters.", param=param)
    parsed = parse_url(url)
    plain = url.isprintable() and not any(c.isspace() for c in url)
    if parsed is None or parsed.host is None or not plain or parsed.scheme not in ("http", "https"):
        raise WebhookNotAllowed(f"'{param}' must be an http or https URL.", param=param)
    if parsed.raw_user or parsed.raw_password:
        raise WebhookNotAllowed(f"'{param}' must not carry credentials.", param=param)
    if not host_allowed(parsed.host, allow_private):
        raise WebhookNotAllowed(f"'{param}' points at a loopback or private address, which webhooks may not be "
                                "delivered to unless the operator sets allow_private_webhooks: true.", param=param)
    return url


async def deliver_step(engine: AsyncEngine, sender: WebhookSender, task: dict[str, Any], lease: Lease,
                       body: bytes, max_attempts: int) -> None:
    """One delivery of a task's pending webhook (the engine's work for it). A failure leaves the task
    due again after a backoff (2 s, 4 s, 8 s...) until ``max_attempts``; a task that changed while it
    was delivered is left due at once, so that its newer state is delivered next."""
    if task["webhook_state"] != "pending" or not task["webhook"]:
        await store.release(engine, lease, {"due_ms": None})
        return
    delivered = await sender.deliver(task["webhook"], body)
    attempts = task["webhook_attempts"] + 1
    now = now_ms()
    if delivered:
        values: dict[str, Any] = {"webhook_state": "delivered", "due_ms": None, "webhook_attempts": 0}
    elif attempts >= max_attempts:
        values = {"webhook_state": "failed", "due_ms": None, "webhook_attempts": 0}
    else:
        values = {"due_ms": now + _BACKOFF_MS * 2 ** (attempts - 1), "webhook_attempts": attempts}
    if not await store.release_if_unchanged(engine, lease, task["updated_ms"], values):
        await store.release(engine, lease, {"due_ms": now})


class WebhookSender:
    def __init__(self, *, timeout_s: float, allow_private: bool) -> None:
        self._timeout_s = timeout_s
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = public_session(allow_private=self._allow_private, timeout_s=self._timeout_s)
        return self._session

    async def deliver(self, url: str, body: bytes) -> bool:
        """POST ``body`` (JSON); True when the receiver answered 2xx."""
        try:
            check_webhook_url(url, allow_private=self._allow_private)
            async with self._client().post(url, data=body, allow_redirects=False,
                                           headers={"Content-Type": "application/json",
                                                    "User-Agent": "relaygate-webhook"}) as response:
                return 200 <= response.status < 300
        except (aiohttp.ClientError, OSError, TimeoutError, InvalidRequest) as exc:
            # The URL is the client's; its host is not logged (it may carry a token in its path).
            log.info("webhook delivery failed: %s", type(exc).__name__)
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
