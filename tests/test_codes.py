"""Scan-code rules: canonical form, generators, check character."""

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redemption import codes, rules

TYPED = st.text(alphabet=string.ascii_letters + string.digits + " -\t", max_size=80)
PAYLOAD = st.text(alphabet=codes.ALPHABET, min_size=1, max_size=40)


@given(TYPED)
def test_canonical_is_idempotent_and_uses_only_allowed_characters(raw):
    c = codes.canonical(raw)
    assert codes.canonical(c) == c
    assert set(c) <= set(string.ascii_uppercase + string.digits)
    assert not set(c) & {"O", "I", "L", " ", "-", "\t"}


@given(TYPED)
def test_spelling_variants_share_one_canonical_form(raw):
    variant = raw.lower().replace("0", "o").replace("1", "l")
    spaced = "-".join(variant) if variant else variant
    assert codes.canonical(spaced) == codes.canonical(raw)


@given(st.one_of(TYPED, st.text(max_size=90)))
def test_the_fast_paths_agree_with_the_documented_rules(raw):
    # canonical() and canonical_or_none() take a bytes shortcut for ASCII text; this is what
    # they must still mean: uppercase, blanks and hyphens dropped, O/I/L read as 0/1/1, and
    # a valid scan code only as SCAN_CODE_INPUT_REGEX spells it.
    meant = raw.upper().translate(
        str.maketrans({" ": None, "\t": None, "-": None, "O": "0", "I": "1", "L": "1"})
    )
    assert codes.canonical(raw) == meant
    valid = rules.is_scan_code_input(raw) and rules.is_canonical_scan_code(meant)
    assert codes.canonical_or_none(raw) == (meant if valid else None)


def test_canonical_examples():
    assert codes.canonical("k7qm 3xj9-abcd") == "K7QM3XJ9ABCD"
    assert codes.canonical("GOLD-ILo1") == "G01D1101"
    assert rules.is_canonical_scan_code("ABCD")
    assert not rules.is_canonical_scan_code("ABC")
    assert not rules.is_canonical_scan_code("A" * 65)
    assert not rules.is_canonical_scan_code("ABCD!")


@given(PAYLOAD)
def test_check_character_validates_its_payload(payload):
    assert codes.has_valid_check(payload + codes.check_character(payload))


@given(PAYLOAD, st.integers(min_value=0), st.integers(min_value=1, max_value=31))
def test_check_character_catches_any_single_substitution(payload, where, shift):
    full = payload + codes.check_character(payload)
    i = where % len(full)
    wrong = codes.ALPHABET[(codes.ALPHABET.index(full[i]) + shift) % 32]
    typo = full[:i] + wrong + full[i + 1 :]
    assert not codes.has_valid_check(typo)


@given(PAYLOAD.filter(lambda p: len(p) >= 2), st.integers(min_value=0))
def test_check_character_catches_adjacent_transpositions(payload, where):
    full = payload + codes.check_character(payload)
    i = where % (len(full) - 1)
    if full[i] == full[i + 1]:
        return
    swapped = full[:i] + full[i + 1] + full[i] + full[i + 2 :]
    # Luhn mod N misses only the transposition of the two symbols that map onto each other.
    pair = {codes.ALPHABET.index(full[i]), codes.ALPHABET.index(full[i + 1])}
    if pair != {0, 31}:
        assert not codes.has_valid_check(swapped)


@pytest.mark.parametrize(
    ("algorithm", "length", "prefix", "check", "display_re"),
    [
        ("Crockford", 16, "", False, r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$"),
        ("Crockford", 10, "", True, r"^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2}$"),
        ("FiveByFive", None, "", False, r"^[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$"),
        ("StructuredGuid", None, "", False, r"^[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}$"),
        ("Crockford", 8, "xmas", False, r"^XMAS-[0-9A-Z]{4}-[0-9A-Z]{4}$"),
    ],
)
def test_generated_codes_have_the_documented_shape(algorithm, length, prefix, check, display_re):
    shape = codes.make_shape(algorithm=algorithm, length=length, prefix=prefix, include_check=check)
    for display, canon in codes.generate(shape, 200):
        assert re.match(display_re, display), display
        assert codes.canonical(display) == canon
        assert rules.is_canonical_scan_code(canon)
        assert shape.matches(canon) or algorithm == "StructuredGuid"
        if check:
            assert codes.has_valid_check(canon[len(shape.prefix_canonical) :])
            assert not shape.check_fails(canon)


def test_generated_characters_avoid_ambiguous_letters():
    shape = codes.make_shape(algorithm=None, length=32, prefix=None, include_check=False)
    seen = set("".join(c for _, c in codes.generate(shape, 2000)))
    assert seen == set(codes.ALPHABET)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"algorithm": "Nope"}, "algorithmName"),
        ({"length": 7}, "length"),
        ({"length": 33}, "length"),
        ({"prefix": "bad!"}, "prefix"),
        ({"algorithm": "StructuredGuid", "include_check": True}, "algorithmDetails.includeCheck"),
    ],
)
def test_bad_generation_options_name_the_field(kwargs, field):
    options = {"algorithm": None, "length": None, "prefix": None, "include_check": False} | kwargs
    with pytest.raises(ValueError, match=f"^{field}:"):
        codes.make_shape(**options)


def test_code_space_feasibility_is_one_thousandth_of_what_is_left():
    shape = codes.make_shape(algorithm=None, length=8, prefix=None, include_check=True)
    space = 32**7
    assert codes.feasible(shape, quantity=space // 1000, already_issued=0)
    assert not codes.feasible(shape, quantity=space // 1000 + 1, already_issued=0)
    assert codes.feasible(shape, quantity=space // 2000 - 1, already_issued=space // 2)
    assert not codes.feasible(shape, quantity=space // 2000 + 1, already_issued=space // 2)
