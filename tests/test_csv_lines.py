"""The import line parser on its own: text in, a parsed line or the line's error out."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redemption import rules
from redemption.services.bulk.csv_lines import (
    LineError,
    ParsedLine,
    is_header,
    parse_line,
    split_line,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("good-0001", ParsedLine("G00D0001", "GOOD-0001", "Inactive", "{}")),
        ("GOOD-0002,Available", ParsedLine("G00D0002", "GOOD-0002", "Available", "{}")),
        ("GOOD-0003,available", ParsedLine("G00D0003", "GOOD-0003", "Available", "{}")),
        (" GOOD 0004 , Inactive ", ParsedLine("G00D0004", "GOOD 0004", "Inactive", "{}")),
        (
            'GOOD-0005,Inactive,{"sku": "A", "n": 2}',
            ParsedLine("G00D0005", "GOOD-0005", "Inactive", '{"sku":"A","n":2}'),
        ),
        (
            'GOOD-0006,,"{""sku"": ""B""}"',
            ParsedLine("G00D0006", "GOOD-0006", "Inactive", '{"sku":"B"}'),
        ),
        (
            '"GOOD-0007","Available",{"a": "x,y", "b": 1}',
            ParsedLine("G00D0007", "GOOD-0007", "Available", '{"a":"x,y","b":1}'),
        ),
    ],
)
def test_a_good_line_parses_to_its_code_state_and_info(text, expected):
    assert parse_line(text) == expected


@pytest.mark.parametrize(
    ("text", "code", "shown", "message"),
    [
        ("bad!", "INVALID_SCAN_CODE", "BAD!", "4-64 letters and digits"),
        ("-".join("AB" * 30), "INVALID_SCAN_CODE", "-".join("AB" * 30)[:80], "4-64"),
        ("GOOD-0005,Redeemed", "INVALID_PARAMETER_VALUE", "GOOD-0005", "codeState"),
        ("GOOD-0006,Available,{not json}", "INVALID_PARAMETER_VALUE", "GOOD-0006", "JSON object"),
        ("GOOD-0007,Available,[1,2]", "INVALID_PARAMETER_VALUE", "GOOD-0007", "JSON object"),
        (
            'NULL-0001,Available,"{""note"": ""a\\u0000b""}"',
            "INVALID_PARAMETER_VALUE",
            "NULL-0001",
            "NUL characters",
        ),
        (
            "BIG-00001,Available," + json.dumps({"x": "y" * 17_000}),
            "INVALID_PARAMETER_VALUE",
            "BIG-00001",
            "16 KB",
        ),
        (",Available", "INVALID_SCAN_CODE", None, "4-64"),
    ],
)
def test_a_bad_line_gives_its_error_and_the_code_as_shown(text, code, shown, message):
    result = parse_line(text)

    assert isinstance(result, LineError)
    assert (result.code, result.scan_code) == (code, shown)
    assert message in result.message


@pytest.mark.parametrize(
    ("text", "header"),
    [
        ("scanCode", True),
        ("scanCode,codeState,customCodeInfo", True),
        ('"Scan Code",state', True),
        ("scan_code", True),
        ("SCANC0DE", False),
        ("ABCD-1234,scanCode", False),
    ],
)
def test_a_header_names_the_scan_code_column_first(text, header):
    assert is_header(text) is header


def test_splitting_keeps_everything_after_the_second_comma_as_the_json():
    assert split_line('A,B,{"x": 1, "y": 2}') == ["A", "B", '{"x": 1, "y": 2}']
    assert split_line('"A,1",B') == ["A,1", "B"]
    assert split_line("A") == ["A"]


@settings(max_examples=300, deadline=None)
@given(
    st.text()
    | st.lists(st.sampled_from(['"', ",", "\r", "[", "{", "\\u0000", "\\ud800", "A", "1e999"])).map(
        "".join
    )
)
def test_any_text_parses_to_a_line_or_a_storable_error(text):
    result = parse_line(text)

    assert isinstance(result, ParsedLine | LineError)
    if isinstance(result, LineError):
        assert result.scan_code is None or rules.is_storable_text(result.scan_code)
        assert result.code in {"INVALID_SCAN_CODE", "INVALID_PARAMETER_VALUE"}
    else:
        assert rules.json_value_problem(json.loads(result.info_json)) is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('"CRCR-0001"\r,Available', "not valid CSV"),
        ("DEEP-0001,," + "[" * 50_000, "nest"),
        ('SURR-0001,,{"a": "\\ud800"}', "surrogates"),
        ('INFN-0001,,{"a": 1e999999}', "finite"),
        ('DUPE-0001,,{"a": 1, "a": 2}', "duplicate key"),
        ("NULB\x00-0001", "NUL"),
    ],
)
def test_content_that_broke_the_import_is_a_line_error(text, words):
    result = parse_line(text)

    assert isinstance(result, LineError)
    assert words in result.message
