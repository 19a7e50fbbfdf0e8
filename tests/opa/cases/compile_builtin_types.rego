package compat.compile_builtin_types

counted := count(12)
summed := sum([1, "2"])
