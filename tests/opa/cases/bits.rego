package compat.bits

and_basic := bits.and(12, 10)
or_basic := bits.or(12, 10)
xor_basic := bits.xor(12, 10)
negate_basic := bits.negate(5)
negate_zero := bits.negate(0)
lsh_basic := bits.lsh(1, 10)
lsh_large := bits.lsh(1, 70)
rsh_basic := bits.rsh(1024, 3)
rsh_negative := bits.rsh(-16, 2)
and_negative := bits.and(-1, 255)
xor_big := bits.xor(123456789012345678901234567890, 1)
