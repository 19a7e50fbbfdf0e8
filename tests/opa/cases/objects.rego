package compat.objects

obj := {"a": 1, "b": {"c": [1, 2], "d": "x"}, "é": true}
get_present := object.get(obj, "a", "dflt")
get_missing := object.get(obj, "zz", "dflt")
get_path := object.get(obj, ["b", "c", 1], "dflt")
get_path_missing := object.get(obj, ["b", "q"], "dflt")
get_empty_path := object.get(obj, [], "dflt")
get_false_value := object.get({"f": false}, "f", true)
get_null_value := object.get({"n": null}, "n", 1)
remove_keys := object.remove(obj, ["a", "zz"])
remove_set := object.remove(obj, {"b"})
remove_object_keys := object.remove(obj, {"a": 0, "é": 0})
union_deep := object.union({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}, "c": 4})
union_replace_nonobject := object.union({"a": {"x": 1}}, {"a": 5})
union_n_three := object.union_n([{"a": 1}, {"b": 2}, {"a": 3, "c": {"d": 1}}])
union_n_empty := object.union_n([])
filter_keys := object.filter(obj, ["a", "é", "missing"])
filter_set := object.filter(obj, {"b"})
keys_basic := object.keys(obj)
keys_empty := object.keys({})
subset_yes := object.subset({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2}})
subset_no := object.subset({"a": 1}, {"a": 2})
subset_arrays := object.subset([1, 2, 3, 4], [2, 3])
subset_arrays_gap := object.subset([1, 2, 3], [1, 3])
subset_sets := object.subset({1, 2, 3}, {1, 3})
json_filter_paths := json.filter({"a": {"b": 1, "c": 2}, "d": [10, 20, 30]}, ["a/b", "d/1"])
json_filter_array_paths := json.filter({"a": {"b": 1, "c": 2}}, [["a", "c"]])
json_remove_paths := json.remove({"a": {"b": 1, "c": 2}, "d": [10, 20]}, ["a/b", "d/0"])
json_remove_escaped := json.remove({"a/b": 1, "c~d": 2, "x": 3}, ["a~1b", "c~0d"])
json_patch_ops := json.patch({"a": 1, "list": [1, 2]}, [
	{"op": "add", "path": "/b", "value": {"c": 2}},
	{"op": "replace", "path": "/a", "value": 10},
	{"op": "add", "path": "/list/-", "value": 3},
	{"op": "remove", "path": "/list/0"},
	{"op": "copy", "from": "/b", "path": "/b2"},
	{"op": "move", "from": "/a", "path": "/moved"},
])
json_patch_test_ok := json.patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1}, {"op": "add", "path": "/t", "value": true}])
json_patch_empty := json.patch({"a": 1}, [])
lookup_nonascii := obj["é"]
composite_keys := {[1, 2]: "arr", {"k": 1}: "obj"}
object_equal := {"a": 1, "b": 2} == {"b": 2, "a": 1}
object_unicode_key_order := object.keys({"b": 1, "é": 2, "Z": 3, "a": 4})
input_get := object.get(input, ["user", "role"], "guest")
lookup_missing := data.v.obj.zz
