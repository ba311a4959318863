"""Standard Webhooks signatures, against the specification's published test vectors."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from services.delivery.domain.signing import (
    InvalidSecret,
    InvalidSignature,
    message_id,
    new_secret,
    secret_key,
    sign,
    signature_headers,
    verify,
)

# The vector of the reference libraries' tests (standard-webhooks, libraries/*/tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_published_vector_signs_as_published() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_prefix_is_optional_for_the_key() -> None:
    assert secret_key(VECTOR_SECRET) == secret_key(VECTOR_SECRET.removeprefix("whsec_"))
    assert sign(VECTOR_SECRET[6:], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_headers_carry_id_timestamp_and_signature() -> None:
    assert signature_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }


def test_verify_accepts_the_vector_and_one_good_signature_among_others() -> None:
    headers = signature_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)
    headers["webhook-signature"] = " ".join(
        [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            VECTOR_SIGNATURE,
        ]
    )
    verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP + 299)


@pytest.mark.parametrize(
    ("change", "now"),
    [
        ({"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="}, 0),
        ({"webhook-signature": VECTOR_SIGNATURE.replace("v1,", "v1a,")}, 0),
        ({"webhook-id": "msg_other"}, 0),
        ({"webhook-timestamp": "hello"}, 0),
        ({"webhook-timestamp": str(VECTOR_TIMESTAMP + 1)}, 0),
        ({}, 301),  # too old
        ({}, -301),  # too new
    ],
)
def test_verify_refuses_what_does_not_match(change: dict[str, str], now: int) -> None:
    headers = {**signature_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)}
    headers.update(change)
    with pytest.raises(InvalidSignature):
        verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP + now)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_refuses_missing_headers(missing: str) -> None:
    headers = signature_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    del headers[missing]
    with pytest.raises(InvalidSignature):
        verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_a_tampered_body_does_not_verify() -> None:
    headers = signature_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    with pytest.raises(InvalidSignature):
        verify(VECTOR_SECRET, headers, b'{"test":2432232314}', now=VECTOR_TIMESTAMP)


def test_secrets_are_prefixed_base64_of_24_to_64_bytes() -> None:
    secret = new_secret(bytes(range(32)))
    assert secret.startswith("whsec_")
    assert base64.b64decode(secret[6:]) == bytes(range(32))
    for size in (0, 23, 65):
        with pytest.raises(InvalidSecret):
            new_secret(b"x" * size)
    with pytest.raises(InvalidSecret):
        secret_key("whsec_not base64!")


def test_message_ids_are_stable_and_have_no_dot() -> None:
    delivery = uuid.uuid4()
    assert message_id(delivery) == message_id(delivery) == f"msg_{delivery.hex}"
    with pytest.raises(ValueError, match="must not contain"):
        sign(VECTOR_SECRET, "msg.1", 1, b"{}")


@given(
    entropy=st.binary(min_size=24, max_size=64),
    text=st.text(max_size=500),
    timestamp=st.integers(min_value=0, max_value=2**33),
)
def test_the_reference_library_signs_as_we_do(entropy: bytes, text: str, timestamp: int) -> None:
    """An independent implementation (the standardwebhooks package) agrees with ours."""
    secret = new_secret(entropy)
    msg_id = message_id(uuid.UUID(int=timestamp))
    body = text.encode()
    theirs = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), text)
    assert sign(secret, msg_id, timestamp, body) == theirs
    verify(secret, signature_headers(secret, msg_id, timestamp, body), body, now=timestamp)
