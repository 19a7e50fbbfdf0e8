package compat.defaults_functions_errors

fee_of_string := fee("x")
