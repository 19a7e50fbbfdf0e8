package compat.semver

valid_basic := semver.is_valid("1.2.3")
valid_prerelease := semver.is_valid("1.2.3-alpha.1+build.5")
valid_v_prefix := semver.is_valid("v1.2.3")
valid_short := semver.is_valid("1.2")
valid_leading_zero := semver.is_valid("01.2.3")
valid_number := semver.is_valid(data.v.num)
compare_less := semver.compare("1.2.3", "1.10.0")
compare_equal := semver.compare("1.0.0", "1.0.0")
compare_build_ignored := semver.compare("1.0.0+a", "1.0.0+b")
compare_prerelease := semver.compare("1.0.0-alpha", "1.0.0")
compare_prerelease_order := semver.compare("1.0.0-alpha.10", "1.0.0-alpha.9")
compare_numeric_vs_alpha := semver.compare("1.0.0-1", "1.0.0-a")
