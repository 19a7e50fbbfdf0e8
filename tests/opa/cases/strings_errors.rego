package compat.strings_errors

indexof_empty := indexof("abc", "")
input_upper := upper(input.name)
input_concat := concat("/", input.parts)
