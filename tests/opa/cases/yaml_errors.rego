package compat.yaml_errors

unmarshal_invalid := yaml.unmarshal("a: [1")
