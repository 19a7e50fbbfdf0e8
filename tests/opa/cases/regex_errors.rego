package compat.regex_errors

match_invalid := regex.match(`(`, "x")
split_invalid := regex.split(`[`, "x")
replace_invalid := regex.replace("x", `(`, "y")
find_n_invalid := regex.find_n(`*`, "x", 1)
match_input_invalid := regex.match(input.pattern, "x")
