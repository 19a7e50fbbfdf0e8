package compat.yaml_errors

unmarshal_invalid := yaml.unmarshal("a: [1")

unmarshal_inf := yaml.unmarshal("a: .inf")

unmarshal_null_key := yaml.unmarshal("~: 1")

unmarshal_bad_int := yaml.unmarshal("a: !!int x")

unmarshal_unknown_alias := yaml.unmarshal("a: *nope")
