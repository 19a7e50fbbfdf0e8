package compat.compile_deprecated_builtin

value := any([true, false])
