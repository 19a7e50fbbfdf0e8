package compat.metadata_related

# A related resource's reference is a URL, written back as Go writes it.

# METADATA
# related_resources:
#   - ref: not a url
#   - ref: https://example.com/a b?q=1 2#f g
#   - https://Example.COM/x/../y
#   - ref: mailto:ops@example.com
#     description: mail
#   - ref: /relative/path?x=ü
#   - ref: "http://u:p@h.com/a b?"
#   - ref: "s:/p q"
#   - ref: "a:b/c"
#   - ref: "./a:b"
#   - ref: "*"
#   - ref: "http://h.com/%41?x#%41"
#   - "HTTPS://h.com:8080/π"
#   - ref: "file:///etc/x y"
#   - ref: "http://[::1]:80/p"
resources := rego.metadata.rule().related_resources
