package compat.compile_undefined_ref

obj := {"a": 1}
missing := obj.zz
