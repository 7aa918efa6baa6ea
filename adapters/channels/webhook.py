"""``WebhookChannel``: CloudEvents over HTTP, signed as the Standard Webhooks spec says."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx

from opcatflow.engine.clock import Clock, SystemClock
from opcatflow.notifications.channel import DeliveryError, Outgoing
from opcatflow.notifications.directory import DirectorySource

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_RETRYABLE = frozenset({408, 409, 425, 429})


def sign(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookChannel:
    """POSTs each message's CloudEvent to the endpoint the recipients directory names.

    Only URLs of the directory's endpoints are ever called: a message names an endpoint id,
    never a URL, and redirects are not followed. Proxy variables from the environment are
    ignored.

    Args:
        directory: where endpoints (URL and secret) are looked up at each send.
        timeout: seconds for connecting, reading, writing and waiting for a pooled connection.
        clock: the time put in ``webhook-timestamp`` (receivers refuse stale ones).
        transport: an httpx transport (tests).
    """

    name = "webhook"

    def __init__(
        self,
        directory: DirectorySource,
        *,
        timeout: float = 10.0,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.directory = directory
        self.clock = clock or SystemClock()
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            transport=transport,
            headers={"user-agent": "opcatflow-webhook"},
        )

    def request(self, message: Outgoing) -> tuple[str, dict[str, str], bytes]:
        """The URL, headers and body for one message.

        Raises:
            DeliveryError: (permanent) the endpoint is not configured, or no CloudEvent.
        """
        endpoint = self.directory.current().endpoints.get(message.recipient)
        if endpoint is None:
            raise DeliveryError(
                f"webhook endpoint {message.recipient!r} is not in the recipients directory",
                permanent=True,
            )
        event: Any = message.cloudevent
        if not isinstance(event, dict):
            raise DeliveryError(f"message {message.id} has no CloudEvent body", permanent=True)
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(self.clock.now().timestamp())
        headers = {
            "content-type": CONTENT_TYPE,
            "webhook-id": message.idempotency_key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(endpoint.secret, message.idempotency_key, timestamp, body),
        }
        return endpoint.url, headers, body

    def send(self, message: Outgoing) -> None:
        url, headers, body = self.request(message)
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as err:
            raise DeliveryError(f"webhook {message.recipient!r} timed out: {err!r}") from err
        except httpx.HTTPError as err:
            raise DeliveryError(f"webhook {message.recipient!r} failed: {err!r}") from err
        status = response.status_code
        if 200 <= status < 300:
            return
        permanent = status < 500 and status not in _RETRYABLE
        raise DeliveryError(
            f"webhook {message.recipient!r} answered HTTP {status}", permanent=permanent
        )

    def close(self) -> None:
        self.client.close()
