package compat.units_errors

parse_bad := units.parse("ten")
parse_bytes_bad := units.parse_bytes("1XB")
parse_bytes_negative := units.parse_bytes("-1K")
parse_quoted_space := units.parse("2 Ki")
