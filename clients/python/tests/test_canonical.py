"""Canonical JSON beyond the document's vectors."""

from __future__ import annotations

import pytest

from warden import canonical


@pytest.mark.parametrize(
    "value,text",
    [
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (0.0000001, "1e-7"),
        (123.456, "123.456"),
        (-0.5, "-0.5"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (1e16, "10000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        (0.1 + 0.2, "0.30000000000000004"),
        (2.0, "2"),
        (100.0, "100"),
        (1.25e-5, "0.0000125"),
    ],
)
def test_number_form_is_ecmascript(value: float, text: str) -> None:
    assert canonical.format_number(value) == text


def test_integers_are_exact() -> None:
    assert canonical.dumps(18446744073709551615) == "18446744073709551615"
    assert canonical.dumps(-9223372036854775808) == "-9223372036854775808"
    assert canonical.dumps(1795308111311231335) == "1795308111311231335"
    with pytest.raises(canonical.CanonicalError) as e:
        canonical.dumps({"a": [2**64]})
    assert (e.value.code, e.value.pointer) == ("number_out_of_range", "/a/0")


def test_members_sort_by_utf16_code_units() -> None:
    # U+FF61 sorts after U+1F600 in code points, before it in UTF-16 code units (surrogates 0xD83D…)
    value = {"\uff61": 1, "\U0001f600": 2, "a": 3, "B": 4, "": 5}
    assert canonical.dumps(value) == '{"":5,"B":4,"a":3,"\U0001f600":2,"\uff61":1}'


def test_string_escapes() -> None:
    s = '"\\\b\f\n\r\t\x00\x1f\x7f/\u2028é'
    assert canonical.dumps(s) == '"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\x7f/\u2028é"'


def test_literals_and_nesting() -> None:
    assert canonical.dumps({"z": [True, False, None, {}], "a": []}) == '{"a":[],"z":[true,false,null,{}]}'


def test_lone_surrogate_refused_when_encoding() -> None:
    with pytest.raises(canonical.CanonicalError) as e:
        canonical.dumps({"s": "\ud800"})
    assert e.value.code == "invalid_unicode"


@pytest.mark.parametrize(
    "text,code,pointer",
    [
        ("{", "malformed_json", ""),
        ('{"a":1,}', "malformed_json", ""),
        ("[01]", "malformed_json", "/0"),
        ('{"a": NaN}', "malformed_json", "/a"),
        ('"\x01"', "malformed_json", ""),
        ("1 2", "malformed_json", ""),
        ("1" * 101, "number_too_long", ""),
        ("[" * 5 + "]" * 5, "json_too_deep", "/0/0/0"),
        ('{"a/b~c": {"x": 1, "x": 2}}', "duplicate_member", "/a~1b~0c/x"),
        ('{"$serde_json::private::RawValue": 1}', "reserved_member_name", "/$serde_json::private::RawValue"),
        ('["\\udc00"]', "invalid_unicode", "/0"),
        ('{"x": -1e-400}', "number_out_of_range", "/x"),
    ],
)
def test_refusals(text: str, code: str, pointer: str) -> None:
    with pytest.raises(canonical.CanonicalError) as e:
        canonical.parse(text, max_depth=3)
    assert (e.value.code, e.value.pointer) == (code, pointer)


def test_zero_forms_are_accepted() -> None:
    assert canonical.dumps(canonical.parse("[0.0, -0.0, 0e10, -0]")) == "[0,0,0,0]"


def test_invalid_utf8_bytes() -> None:
    with pytest.raises(canonical.CanonicalError) as e:
        canonical.parse(b'"\xff"')
    assert e.value.code == "invalid_unicode"


def test_round_trip_is_stable() -> None:
    text = '{"b":[1,2.5,{"c":"\\u00e9\\ud83d\\ude00"}],"a":-9223372036854775808}'
    once = canonical.dumps(canonical.parse(text))
    assert once == '{"a":-9223372036854775808,"b":[1,2.5,{"c":"é😀"}]}'
    assert canonical.dumps(canonical.parse(once)) == once
