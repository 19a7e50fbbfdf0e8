package compat.regex_errors

match_invalid := regex.match(`(`, "x")
split_invalid := regex.split(`[`, "x")
replace_invalid := regex.replace("x", `(`, "y")
find_n_invalid := regex.find_n(`*`, "x", 1)
match_input_invalid := regex.match(input.pattern, "x")

globs_invalid_00 := regex.globs_match("x[", "x")

globs_invalid_01 := regex.globs_match("*", "*")

globs_invalid_02 := regex.globs_match("+a", "a")

globs_invalid_03 := regex.globs_match("[a-]", "-")

globs_invalid_04 := regex.globs_match("[-a]", "-")

globs_invalid_05 := regex.globs_match("[a\\]]", "]")

globs_invalid_06 := regex.globs_match("\\", "\\")

globs_invalid_07 := regex.globs_match("a\\", "a")

globs_invalid_08 := regex.globs_match("[z-a]", "z")

globs_invalid_09 := regex.globs_match("\\*", "*")

globs_invalid_10 := regex.globs_match("a**", "a")

globs_invalid_11 := regex.globs_match("a*+", "a")

globs_invalid_12 := regex.globs_match("[*]", "*")
