"""Phone numbers to E.164, with a default country for numbers written nationally."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    """Not a phone number that could be dialled."""


def normalize_phone(raw: str, *, default_country: str | None) -> str:
    """``(415) 555-2671`` with default US -> ``+14155552671``.

    ``00`` international prefixes are understood; extensions are dropped from the E.164 form.
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    region = (default_country or "").upper() or None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhone(_reason(error, region)) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _reason(error: phonenumbers.NumberParseException, region: str | None) -> str:
    if error.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        if region is None:
            return "national number without a country: give +<country code> or a country"
        return "unknown country calling code"
    if error.error_type == phonenumbers.NumberParseException.NOT_A_NUMBER:
        return "not a phone number"
    return "not a valid phone number: too short or too long"
