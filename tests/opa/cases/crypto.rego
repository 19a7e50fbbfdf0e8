# crypto.* digests, MACs and X.509 parsing.
package compat.crypto

md5_empty := crypto.md5("")

sha1_empty := crypto.sha1("")

sha256_empty := crypto.sha256("")

hmac_md5_empty := crypto.hmac.md5("", "k€y")

hmac_sha1_empty := crypto.hmac.sha1("", "k€y")

hmac_sha256_empty := crypto.hmac.sha256("", "k€y")

hmac_sha512_empty := crypto.hmac.sha512("", "k€y")

md5_abc := crypto.md5("abc")

sha1_abc := crypto.sha1("abc")

sha256_abc := crypto.sha256("abc")

hmac_md5_abc := crypto.hmac.md5("abc", "k€y")

hmac_sha1_abc := crypto.hmac.sha1("abc", "k€y")

hmac_sha256_abc := crypto.hmac.sha256("abc", "k€y")

hmac_sha512_abc := crypto.hmac.sha512("abc", "k€y")

md5_utf8 := crypto.md5("Zoë 雪 ✓")

sha1_utf8 := crypto.sha1("Zoë 雪 ✓")

sha256_utf8 := crypto.sha256("Zoë 雪 ✓")

hmac_md5_utf8 := crypto.hmac.md5("Zoë 雪 ✓", "k€y")

hmac_sha1_utf8 := crypto.hmac.sha1("Zoë 雪 ✓", "k€y")

hmac_sha256_utf8 := crypto.hmac.sha256("Zoë 雪 ✓", "k€y")

hmac_sha512_utf8 := crypto.hmac.sha512("Zoë 雪 ✓", "k€y")

hmac_long_key := crypto.hmac.sha256("msg", concat("", [x | some i in numbers.range(1, 200); x := "k"]))

hmac_equal_same := crypto.hmac.equal("abc", "abc")

hmac_equal_diff := crypto.hmac.equal("abc", "abd")

hmac_equal_len := crypto.hmac.equal("abc", "abcd")

hmac_equal_empty := crypto.hmac.equal("", "")
