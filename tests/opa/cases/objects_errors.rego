package compat.objects_errors

subset_array_in_set := object.subset({1, 2, 3}, [3, 1])
json_patch_test_fail := json.patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
input_union := object.union({"role": "guest", "tier": 1}, object.get(input, "user", {}))
