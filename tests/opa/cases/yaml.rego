package compat.yaml

marshal_object := yaml.marshal({"b": [1, 2.5, "x"], "a": {"n": null, "t": true}})
marshal_string_quoting := yaml.marshal(["yes", "no", "1", "", "a: b", "é"])
marshal_big := yaml.marshal([123456789012345678901234567890, 1e21, 0.1])
unmarshal_doc := yaml.unmarshal("a: 1\nb: [x, y]\nc: {d: true}\ne: 1.5\nf: null\n")
unmarshal_yes_no := yaml.unmarshal("a: yes\nb: no\nc: on\nd: 'yes'\n")
unmarshal_anchor := yaml.unmarshal("base: &b {x: 1}\nref: *b\n")
unmarshal_scalar := yaml.unmarshal("42")
unmarshal_multiline := yaml.unmarshal("text: |\n  line1\n  line2\n")
is_valid_yes := yaml.is_valid("a: [1, 2]")
is_valid_no := yaml.is_valid("a: [1, 2")
is_valid_tab := yaml.is_valid("a:\n\t- b")
