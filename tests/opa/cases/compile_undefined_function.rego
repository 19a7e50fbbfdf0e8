package compat.compile_undefined_function

value := no_such_function(1)
