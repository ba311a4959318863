"""Standard Webhooks signatures (symmetric, ``v1``): HMAC-SHA256 over ``{id}.{timestamp}.{body}``.

The secret is shown to the subscriber as ``whsec_`` followed by the base64 of 24 to 64 random
bytes; the key is those bytes. The ``webhook-signature`` header is a space-separated list of
``v1,<base64 signature>``; a receiver accepts the message when one of them matches and the
timestamp is within its tolerance of its own clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from uuid import UUID

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 5 * 60

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


class InvalidSecret(ValueError):
    """A secret that is not ``whsec_`` + base64 of 24 to 64 bytes."""


class InvalidSignature(ValueError):
    """A message whose headers or signature do not verify."""


def new_secret(entropy: bytes) -> str:
    """The serialized secret for these random bytes (the caller draws them)."""
    if not MIN_SECRET_BYTES <= len(entropy) <= MAX_SECRET_BYTES:
        raise InvalidSecret(
            f"a secret has {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(entropy)}"
        )
    return SECRET_PREFIX + base64.b64encode(entropy).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a serialized secret (the ``whsec_`` prefix is optional)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("the secret is not base64") from None
    if not key:
        raise InvalidSecret("the secret is empty")
    return key


def message_id(delivery: UUID) -> str:
    """The ``webhook-id`` of a delivery: the same on every attempt, and without a ``.``."""
    return f"msg_{delivery.hex}"


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    if "." in msg_id:
        raise ValueError("a message id must not contain '.'")
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of a message."""
    digest = hmac.new(
        secret_key(secret), signed_content(msg_id, timestamp, body), hashlib.sha256
    ).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Check a received message as a subscriber would; raise :class:`InvalidSignature`."""
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get(HEADER_ID)
    timestamp_text = lowered.get(HEADER_TIMESTAMP)
    signatures = lowered.get(HEADER_SIGNATURE)
    if not (msg_id and timestamp_text and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not an integer") from None
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("webhook-timestamp is outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1].encode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(expected, value.encode()):
            return
    raise InvalidSignature("no matching signature")
