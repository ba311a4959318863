"""Email addresses: syntax (no DNS look-up), lower case, and free-mail providers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from services.ingest.domain.company import registrable_domain

# Providers whose addresses say nothing about the person's company.
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "ymail.com",
        "rocketmail.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "msn.com",
        "passport.com",
        "aol.com",
        "aim.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "protonmail.com",
        "protonmail.ch",
        "proton.me",
        "pm.me",
        "zoho.com",
        "zohomail.com",
        "yandex.com",
        "yandex.ru",
        "ya.ru",
        "mail.ru",
        "bk.ru",
        "inbox.ru",
        "list.ru",
        "rambler.ru",
        "gmx.de",
        "gmx.net",
        "gmx.at",
        "gmx.ch",
        "gmx.com",
        "web.de",
        "t-online.de",
        "freenet.de",
        "arcor.de",
        "posteo.de",
        "mailbox.org",
        "online.de",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "sfr.fr",
        "neuf.fr",
        "libero.it",
        "virgilio.it",
        "tiscali.it",
        "alice.it",
        "tin.it",
        "btinternet.com",
        "sky.com",
        "virginmedia.com",
        "ntlworld.com",
        "talktalk.net",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "bellsouth.net",
        "cox.net",
        "charter.net",
        "earthlink.net",
        "juno.com",
        "mail.com",
        "email.com",
        "usa.com",
        "inbox.com",
        "fastmail.com",
        "fastmail.fm",
        "hey.com",
        "tutanota.com",
        "tuta.io",
        "hushmail.com",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "sohu.com",
        "naver.com",
        "hanmail.net",
        "daum.net",
        "rediffmail.com",
        "seznam.cz",
        "centrum.cz",
        "wp.pl",
        "o2.pl",
        "interia.pl",
        "onet.pl",
        "bigpond.com",
        "optusnet.com.au",
        "shaw.ca",
        "rogers.com",
        "sympatico.ca",
        "uol.com.br",
        "bol.com.br",
        "terra.com.br",
        "telenet.be",
        "skynet.be",
        "ziggo.nl",
        "kpnmail.nl",
        "planet.nl",
        "home.nl",
        "bluewin.ch",
        "hispeed.ch",
        "chello.at",
        "telia.com",
        "eircom.net",
        "abv.bg",
        "ukr.net",
        "i.ua",
        "walla.co.il",
        "rambler.ua",
    }
)
# Brands with a free-mail domain in many countries (yahoo.co.uk, hotmail.fr, outlook.de ...).
FREE_MAIL_BRANDS: frozenset[str] = frozenset(
    {"gmail", "googlemail", "yahoo", "ymail", "hotmail", "outlook", "live", "msn", "aol", "gmx"}
)


class InvalidEmail(ValueError):
    """The address is not a syntactically valid email address."""


@dataclass(frozen=True, slots=True)
class Email:
    address: str
    domain: str
    free_mail: bool


def is_free_mail(domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    if domain in FREE_MAIL_DOMAINS:
        return True
    registrable = registrable_domain(domain)
    if registrable is None:
        return False
    if registrable in FREE_MAIL_DOMAINS:
        return True
    brand = registrable.split(".", 1)[0]
    return brand in FREE_MAIL_BRANDS


def normalize_email(raw: str) -> Email:
    """Check the syntax (no DNS) and answer the address in lower case.

    Accepts what people paste: surrounding spaces, ``mailto:``, ``<angle brackets>``.
    """
    text = raw.strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :].split("?", 1)[0]
    if _PLAIN_ADDRESS.fullmatch(text) and not _special_use(domain := text.rsplit("@", 1)[1]):
        # What validate_email answers for such an address, at a tenth of its cost (it
        # spends most of it on IDNA, which a plain ASCII domain does not need).
        address, domain = text.lower(), domain.lower()
    else:
        try:
            validated = validate_email(text, check_deliverability=False, allow_smtputf8=True)
        except EmailNotValidError as error:
            raise InvalidEmail(str(error)) from None
        address = validated.normalized.lower()
        domain = validated.domain.lower()
    return Email(address=address, domain=domain, free_mail=is_free_mail(domain))


# The addresses nearly everyone has, which validate_email accepts as they are but for the
# case of the domain: an unquoted ASCII local part of at most 64 characters; a domain of
# ASCII labels, none starting or ending with a hyphen and none with two hyphens in a row
# (which may be Punycode, decoded by validate_email), ending in an alphabetic top-level
# domain; 254 characters in all. Anything else goes to validate_email,
# which also gives the reason for a refusal. A property test holds the two to the same
# answer.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?!-)){0,61}(?<!-)"
_PLAIN_ADDRESS = re.compile(
    rf"(?=.{{3,254}}\Z)(?=[^@]{{1,64}}@)"
    rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}",
    re.ASCII,
)


def _special_use(domain: str) -> bool:
    """A name reserved for special use (``.local``, ``.test`` ...), which cannot take email."""
    name = domain.lower()
    return any(name == each or name.endswith("." + each) for each in SPECIAL_USE_DOMAIN_NAMES)
