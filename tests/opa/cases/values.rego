package compat.values

unicode_keys := {"clé": "valeur", "ключ": "значение", "鍵": "値", "emoji 🔑": "🔓"}
unicode_lookup := unicode_keys["ключ"]
unicode_key_order := object.keys(unicode_keys)
escapes := ["\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\u0001", "\u001f", "\u007f", "\u2028"]
escaped_key := {"a\"b": 1, "tab\tkey": 2}
nul_in_string := "a\u0000b"
surrogate_pair := "\ud83d\ude00"
long_number_list := [0, -1, 1.5, -2.25, 1e-10, 123e4, 1E2, 0.000001, 1000000.0, 9007199254740992, 9007199254740993]
int_float_equal := [1 == 1.0, 0 == -0, 100 == 1e2, 0.1 + 0.2 == 0.3]
sorted_mixed := sort([{"b": 1}, "b", 2, [1], null, true, "a", 1.5, false, {"a": 9}])
set_of_mixed := {1, "1", true, null, [1], {"1": 1}}
object_equal_nested := {"a": {1, 2}, "b": [1, {"c": 1}]} == {"b": [1, {"c": 1.0}], "a": {2, 1}}
set_vs_array := {1, 2} == [1, 2]
data_user := data.users[input.id]
data_user_name := data.users[input.id].name
data_limits := data.config.limits
data_big := data.config.big
data_float := data.config.ratio
data_whole := data.users
data_missing := data.nothing.here
data_count := count(data.users)
