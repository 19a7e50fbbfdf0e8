package compat.compile_arity

value := concat(",")
