"""Canonical JSON as the evidence ledger writes it, and the strict reader
that accepts exactly the documents Warden accepts.

The encoding is RFC 8785 (JCS) with one difference: integers are written
exactly, digit for digit, instead of as IEEE doubles. Members are sorted by
the UTF-16 code units of their names; strings are escaped as ECMAScript's
``JSON.stringify`` does; other numbers are written in ECMAScript's shortest
round-trip form.

The reader (:func:`parse`) keeps integers written without fraction or
exponent as Python ``int`` (within ``[-2**63, 2**64 - 1]``) and every other
number as ``float``, and refuses, with a stable code and the JSON Pointer of
the fault, what Warden refuses: integers outside that range, numbers no
double holds or that round to zero, numbers written with more than 100
characters, duplicate member names, lone surrogates and serde's reserved
member names.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "CanonicalError",
    "dumps",
    "encode",
    "format_number",
    "parse",
    "pointer_escape",
    "INT_MIN",
    "INT_MAX",
]

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
MAX_NUMBER_CHARS = 100
RESERVED_NAMES = frozenset({"$serde_json::private::Number", "$serde_json::private::RawValue"})


class CanonicalError(ValueError):
    """A document refused by the strict reader or the encoder.

    ``code`` is Warden's refusal code (``number_out_of_range``,
    ``duplicate_member``, ``malformed_json``, ...) and ``pointer`` the JSON
    Pointer (RFC 6901) of the fault, ``""`` for the whole document.
    """

    def __init__(self, code: str, pointer: str, message: str) -> None:
        super().__init__(f"{code} at {pointer or '(document)'}: {message}")
        self.code = code
        self.pointer = pointer
        self.message = message


def pointer_escape(token: str) -> str:
    """One reference token of a JSON Pointer (``~`` → ``~0``, ``/`` → ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


# --------------------------------------------------------------------------
# Encoder


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _escape_string(s: str, pointer: str) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise CanonicalError("invalid_unicode", pointer, "a lone surrogate is not valid Unicode")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_number(value: float) -> str:
    """ECMAScript's ``Number.prototype.toString`` for a finite double."""
    if not math.isfinite(value):
        raise CanonicalError("number_out_of_range", "", f"{value!r} is not a finite number")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip; re-lay them out as
    # ECMAScript does.
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    # Position of the decimal point relative to the start of `digits`.
    point = len(whole) + exponent - (len(whole + frac) - len((whole + frac).lstrip("0")))
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    n = point
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        exp = f"e+{e}" if e >= 0 else f"e-{-e}"
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + exp
    return sign + text


def _encode(value: Any, pointer: str, out: list[str], depth: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise CanonicalError(
                "number_out_of_range", pointer, f"the integer {value} is outside [-2^63, 2^64 - 1]"
            )
        out.append(str(int(value)))
    elif isinstance(value, float):
        try:
            out.append(format_number(value))
        except CanonicalError as e:
            raise CanonicalError(e.code, pointer, e.message) from None
    elif isinstance(value, str):
        out.append(_escape_string(value, pointer))
    elif isinstance(value, dict):
        names = list(value.keys())
        for name in names:
            if not isinstance(name, str):
                raise CanonicalError("invalid_field", pointer, "object member names must be strings")
        names.sort(key=lambda s: s.encode("utf-16-be", "surrogatepass"))
        out.append("{")
        for i, name in enumerate(names):
            if i:
                out.append(",")
            child = pointer + "/" + pointer_escape(name)
            out.append(_escape_string(name, child))
            out.append(":")
            _encode(value[name], child, out, depth + 1)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, f"{pointer}/{i}", out, depth + 1)
        out.append("]")
    else:
        raise CanonicalError("invalid_field", pointer, f"{type(value).__name__} is not a JSON value")


def dumps(value: Any) -> str:
    """The canonical JSON text of a value (see the module's documentation)."""
    out: list[str] = []
    _encode(value, "", out, 0)
    return "".join(out)


def encode(value: Any) -> bytes:
    """The canonical JSON bytes (UTF-8) of a value."""
    return dumps(value).encode("utf-8")


# --------------------------------------------------------------------------
# Strict reader


_WS = " \t\n\r"
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_DIGITS = "0123456789"


class _Reader:
    def __init__(self, text: str, max_depth: int) -> None:
        self.text = text
        self.pos = 0
        self.max_depth = max_depth

    def fail(self, code: str, pointer: str, message: str) -> CanonicalError:
        return CanonicalError(code, pointer, message)

    def malformed(self, pointer: str, what: str) -> CanonicalError:
        return CanonicalError("malformed_json", pointer, f"{what} at character {self.pos}")

    def skip_ws(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _WS:
            pos += 1
        self.pos = pos

    def value(self, pointer: str, depth: int) -> Any:
        self.skip_ws()
        if self.pos >= len(self.text):
            raise self.malformed(pointer, "unexpected end of the document")
        ch = self.text[self.pos]
        if ch == "{":
            return self.object(pointer, depth + 1)
        if ch == "[":
            return self.array(pointer, depth + 1)
        if ch == '"':
            return self.string(pointer)
        if ch == "-" or ch in _DIGITS:
            return self.number(pointer)
        for word, val in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return val
        raise self.malformed(pointer, f"unexpected character {ch!r}")

    def check_depth(self, pointer: str, depth: int) -> None:
        if depth > self.max_depth:
            raise self.fail("json_too_deep", pointer, f"nested deeper than {self.max_depth} levels")

    def object(self, pointer: str, depth: int) -> dict[str, Any]:
        self.check_depth(pointer, depth)
        self.pos += 1
        result: dict[str, Any] = {}
        self.skip_ws()
        if self.pos < len(self.text) and self.text[self.pos] == "}":
            self.pos += 1
            return result
        while True:
            self.skip_ws()
            if self.pos >= len(self.text) or self.text[self.pos] != '"':
                raise self.malformed(pointer, "expected a member name")
            name = self.string(pointer)
            child = pointer + "/" + pointer_escape(name)
            if name in result:
                raise self.fail("duplicate_member", child, f"the member {name!r} is named twice")
            if name in RESERVED_NAMES:
                raise self.fail("reserved_member_name", child, f"the member name {name!r} is reserved")
            self.skip_ws()
            if self.pos >= len(self.text) or self.text[self.pos] != ":":
                raise self.malformed(child, "expected ':'")
            self.pos += 1
            result[name] = self.value(child, depth)
            self.skip_ws()
            if self.pos >= len(self.text):
                raise self.malformed(pointer, "unexpected end of the document")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "}":
                return result
            if ch != ",":
                self.pos -= 1
                raise self.malformed(pointer, "expected ',' or '}'")

    def array(self, pointer: str, depth: int) -> list[Any]:
        self.check_depth(pointer, depth)
        self.pos += 1
        result: list[Any] = []
        self.skip_ws()
        if self.pos < len(self.text) and self.text[self.pos] == "]":
            self.pos += 1
            return result
        while True:
            result.append(self.value(f"{pointer}/{len(result)}", depth))
            self.skip_ws()
            if self.pos >= len(self.text):
                raise self.malformed(pointer, "unexpected end of the document")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "]":
                return result
            if ch != ",":
                self.pos -= 1
                raise self.malformed(pointer, "expected ',' or ']'")

    def string(self, pointer: str) -> str:
        text = self.text
        self.pos += 1
        out: list[str] = []
        start = self.pos
        while True:
            end = start
            while end < len(text) and text[end] not in '"\\' and text[end] >= " ":
                end += 1
            out.append(text[start:end])
            self.pos = end
            if end >= len(text):
                raise self.malformed(pointer, "unterminated string")
            ch = text[end]
            if ch == '"':
                self.pos = end + 1
                break
            if ch < " ":
                raise self.malformed(pointer, "raw control character in a string")
            # a backslash escape
            if end + 1 >= len(text):
                raise self.malformed(pointer, "unterminated escape")
            esc = text[end + 1]
            if esc in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[esc])
                start = end + 2
                continue
            if esc != "u":
                raise self.malformed(pointer, f"invalid escape \\{esc}")
            hex4 = text[end + 2 : end + 6]
            if len(hex4) != 4 or any(c not in "0123456789abcdefABCDEF" for c in hex4):
                raise self.malformed(pointer, "invalid \\u escape")
            out.append(chr(int(hex4, 16)))
            start = end + 6
        value = "".join(out)
        # Pair surrogate escapes; refuse lone ones.
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            value = _pair_surrogates(value, pointer)
        return value

    def number(self, pointer: str) -> int | float:
        text = self.text
        start = self.pos
        pos = start
        if pos < len(text) and text[pos] == "-":
            pos += 1
        int_start = pos
        while pos < len(text) and text[pos] in _DIGITS:
            pos += 1
        int_digits = text[int_start:pos]
        if not int_digits:
            self.pos = pos
            raise self.malformed(pointer, "invalid number")
        if len(int_digits) > 1 and int_digits[0] == "0":
            self.pos = pos
            raise self.malformed(pointer, "a number may not start with 0")
        is_integer = True
        if pos < len(text) and text[pos] == ".":
            is_integer = False
            pos += 1
            frac_start = pos
            while pos < len(text) and text[pos] in _DIGITS:
                pos += 1
            if pos == frac_start:
                self.pos = pos
                raise self.malformed(pointer, "a fraction needs digits")
        if pos < len(text) and text[pos] in "eE":
            is_integer = False
            pos += 1
            if pos < len(text) and text[pos] in "+-":
                pos += 1
            exp_start = pos
            while pos < len(text) and text[pos] in _DIGITS:
                pos += 1
            if pos == exp_start:
                self.pos = pos
                raise self.malformed(pointer, "an exponent needs digits")
        self.pos = pos
        literal = text[start:pos]
        if len(literal) > MAX_NUMBER_CHARS:
            raise self.fail(
                "number_too_long", pointer, f"a number written with {len(literal)} characters (at most 100)"
            )
        if is_integer:
            n = int(literal)
            if not INT_MIN <= n <= INT_MAX:
                raise self.fail(
                    "number_out_of_range", pointer, f"the integer {literal} is outside [-2^63, 2^64 - 1]"
                )
            return n
        f = float(literal)
        if not math.isfinite(f):
            raise self.fail("number_out_of_range", pointer, f"{literal} is beyond a double's range")
        if f == 0 and any(c in "123456789" for c in literal.split("e")[0].split("E")[0]):
            raise self.fail("number_out_of_range", pointer, f"{literal} is not zero but rounds to zero")
        return f


def _pair_surrogates(value: str, pointer: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        c = ord(value[i])
        if 0xD800 <= c <= 0xDBFF and i + 1 < len(value) and 0xDC00 <= ord(value[i + 1]) <= 0xDFFF:
            out.append(chr(0x10000 + ((c - 0xD800) << 10) + (ord(value[i + 1]) - 0xDC00)))
            i += 2
            continue
        if 0xD800 <= c <= 0xDFFF:
            raise CanonicalError("invalid_unicode", pointer, "a lone surrogate escape is not valid Unicode")
        out.append(value[i])
        i += 1
    return "".join(out)


def parse(document: str | bytes, *, max_depth: int = 128) -> Any:
    """Reads one JSON document strictly (see the module's documentation).

    ``bytes`` must be UTF-8. Raises :class:`CanonicalError` naming the
    fault's code and JSON Pointer.
    """
    if isinstance(document, (bytes, bytearray, memoryview)):
        try:
            text = bytes(document).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CanonicalError("invalid_unicode", "", f"the bytes are not UTF-8 ({e.reason})") from None
    else:
        text = document
    reader = _Reader(text, max_depth)
    value = reader.value("", 0)
    reader.skip_ws()
    if reader.pos != len(text):
        raise reader.malformed("", "trailing characters after the document")
    return value
