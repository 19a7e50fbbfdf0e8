package compat.bits_errors

and_float := bits.and(1.5, 1)
lsh_negative_shift := bits.lsh(1, -1)
