"""A purchased list as they really come, for the tests and the benchmark (``bench/ingest.py``)."""

from __future__ import annotations

import random


def dirty_csv(rows: int, seed: int = 7) -> tuple[bytes, dict[str, int]]:
    """A purchased list as they come: semicolons, Windows-1252, header synonyms, shouting,
    duplicates in other spellings, bad emails, bad phones, blank lines, no contact at all."""
    rng = random.Random(seed)
    header = "Company Name;First Name;Surname;E-Mail;Phone No.;Country;Job Title;Employees;Notes"
    lines = [header]
    expected = {"rows": 0, "bad_email": 0, "no_contact": 0, "duplicates": 0, "bad_phone": 0}
    countries = ["Deutschland", "UK", "U.S.A.", "France", "Österreich", "Schweiz", "", "Atlantis"]
    titles = ["CEO", "Head of IT", "Einkaufsleiter", "Sales Manager", "Engineer", ""]
    seen: list[str] = []
    for i in range(rows):
        kind = rng.random()
        company = f"Firma {i % 700} GmbH" if i % 3 else f"FIRMA {i % 700} gmbh"
        phone = f"+49 30 {1000000 + i}"
        if kind < 0.05:
            email = f"kaputt{i}@"
            expected["bad_email"] += 1
        elif kind < 0.07:
            email, phone = "", ""
            expected["no_contact"] += 1
        elif kind < 0.15 and seen:
            email = rng.choice(seen).upper()
            expected["duplicates"] += 1
        else:
            email = f"person.{i}@firma{i % 700}.de"
            seen.append(email)
            if kind > 0.97:
                phone = "bitte nicht anrufen"
                expected["bad_phone"] += 1
        lines.append(
            ";".join(
                [
                    company,
                    "Jörg",
                    "Weiß",
                    email,
                    phone,
                    rng.choice(countries),
                    rng.choice(titles),
                    rng.choice(["10-50", "1.200", "", "viele"]),
                    "Messe Köln",
                ]
            )
        )
        expected["rows"] += 1
        if i % 997 == 0:
            lines.append("")
    return ("\r\n".join(lines) + "\r\n").encode("cp1252"), expected
