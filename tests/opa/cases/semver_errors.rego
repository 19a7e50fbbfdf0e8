package compat.semver_errors

compare_invalid := semver.compare("1.2", "1.2.3")
