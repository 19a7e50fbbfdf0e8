package compat.uuid

parse_v4 := uuid.parse("6ba7b810-9dad-41d1-80b4-00c04fd430c8")
parse_v1 := uuid.parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
parse_braced := uuid.parse("{6ba7b810-9dad-11d1-80b4-00c04fd430c8}")
parse_urn := uuid.parse("urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8")
parse_upper := uuid.parse("6BA7B810-9DAD-11D1-80B4-00C04FD430C8")
parse_invalid := uuid.parse("not-a-uuid")
parse_v7 := uuid.parse("01890a5d-ac96-774b-bcce-b302099a8057")
random_is_string := is_string(uuid.rfc4122("seed"))
random_stable_within_query := uuid.rfc4122("k") == uuid.rfc4122("k")
