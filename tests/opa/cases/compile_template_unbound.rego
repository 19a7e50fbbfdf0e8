package compat.compile_template_unbound

# A name a template string reads that nothing binds: OPA refuses the module.

allow if input.ok

item := $"first item: {input.items[i]}"
