package compat.time_errors

rfc3339_invalid := time.parse_rfc3339_ns("2024-13-01T00:00:00Z")
duration_invalid := time.parse_duration_ns("5 minutes")
duration_days := time.parse_duration_ns("1d")
date_bad_tz := time.date([0, "Mars/Olympus"])
parse_ns_mismatch := time.parse_ns("2006-01-02", "15/03/2024")
