package compat.compile_recursion

a if b
b if a
