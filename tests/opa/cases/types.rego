package compat.types

values := [null, true, 1, 1.5, "s", [1], {"k": 1}, {1}, {}, [], set()]
type_names := [type_name(v) | some v in values]
is_null_all := [is_null(v) | some v in values]
is_boolean_all := [is_boolean(v) | some v in values]
is_number_all := [is_number(v) | some v in values]
is_string_all := [is_string(v) | some v in values]
is_array_all := [is_array(v) | some v in values]
is_object_all := [is_object(v) | some v in values]
is_set_all := [is_set(v) | some v in values]
is_string_false_direct := is_string(data.v.num)
input_type := type_name(input)
input_name_type := type_name(input.name)
input_is_object := is_object(input)
not_string_name if not is_string(input.name)
