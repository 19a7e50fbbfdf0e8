# crypto.* digests, MACs, X.509 and private key parsing, against test-only
# keys and certificates in crypto.json (data.fixtures).
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

x509_parse_leaf := crypto.x509.parse_certificates(data.fixtures.leaf_cert)

x509_parse_ca := crypto.x509.parse_certificates(data.fixtures.ca_cert)

x509_parse_rsa_self := crypto.x509.parse_certificates(data.fixtures.rsa_cert)

x509_parse_two := crypto.x509.parse_certificates(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]))

x509_parse_b64_pem := crypto.x509.parse_certificates(base64.encode(data.fixtures.leaf_cert))

x509_parse_b64_der := crypto.x509.parse_certificates(data.fixtures.leaf_der_b64)

x509_parse_fields := [[c.Subject.CommonName, c.Subject.Organization, c.Issuer.CommonName, c.SerialNumber, c.NotBefore, c.NotAfter, c.DNSNames, c.IPAddresses, c.URIStrings, c.IsCA, c.KeyUsage, c.ExtKeyUsage] | c := crypto.x509.parse_certificates(data.fixtures.leaf_cert)[_]]

x509_parse_wrong_block := crypto.x509.parse_certificates(data.fixtures.rsa_priv_pkcs8)

x509_parse_garbage := crypto.x509.parse_certificates("not a certificate")

x509_parse_empty_b64 := crypto.x509.parse_certificates("")

x509_verify_chain := crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]))

x509_verify_chain_ok := crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]))[0]

x509_verify_single := crypto.x509.parse_and_verify_certificates(data.fixtures.leaf_cert)

x509_verify_wrong_root := crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.rsa_cert, data.fixtures.leaf_cert]))

x509_verify_reversed := crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.leaf_cert, data.fixtures.ca_cert]))

x509_verify_opts_dns := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"DNSName": "svc.warden.test"})

x509_verify_opts_dns_wild := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"DNSName": "api.warden.test"})[0]

x509_verify_opts_dns_bad := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"DNSName": "evil.test"})

x509_verify_opts_time_before := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"CurrentTime": 1600000000000000000})

x509_verify_opts_time_ok := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"CurrentTime": 1800000000000000000})[0]

x509_verify_opts_client := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"KeyUsages": ["KeyUsageClientAuth"]})[0]

x509_verify_opts_codesign := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"KeyUsages": ["KeyUsageCodeSigning"]})

x509_verify_opts_any := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"KeyUsages": ["KeyUsageAny"]})[0]

x509_verify_opts_bad_usage := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"KeyUsages": ["Nope"]})

x509_verify_opts_unknown := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"Foo": 1})

x509_csr := crypto.x509.parse_certificate_request(data.fixtures.csr)

x509_csr_b64 := crypto.x509.parse_certificate_request(base64.encode(data.fixtures.csr)).Subject

x509_csr_wrong := crypto.x509.parse_certificate_request(data.fixtures.leaf_cert)

x509_rsa_key_pkcs1 := crypto.x509.parse_rsa_private_key(data.fixtures.rsa_priv_pkcs1)

x509_rsa_key_pkcs8 := crypto.x509.parse_rsa_private_key(data.fixtures.rsa_priv_pkcs8)

x509_rsa_key_b64 := crypto.x509.parse_rsa_private_key(base64.encode(data.fixtures.rsa_priv_pkcs1))

x509_ec_key_sec1 := crypto.x509.parse_rsa_private_key(data.fixtures.ec_priv_sec1)

x509_ec_key_pkcs8 := crypto.x509.parse_rsa_private_key(data.fixtures.p384_priv)

x509_key_garbage := crypto.x509.parse_rsa_private_key("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")

x509_key_empty := crypto.x509.parse_rsa_private_key("")

x509_keypair_rsa := crypto.x509.parse_keypair(data.fixtures.rsa_cert, data.fixtures.rsa_priv_pkcs1)

x509_keypair_pkcs8 := crypto.x509.parse_keypair(data.fixtures.rsa_cert, data.fixtures.rsa_priv_pkcs8).PrivateKey.E

x509_keypair_b64 := crypto.x509.parse_keypair(base64.encode(data.fixtures.rsa_cert), base64.encode(data.fixtures.rsa_priv_pkcs1)).Leaf.Subject.CommonName

x509_keypair_type_mismatch := crypto.x509.parse_keypair(data.fixtures.rsa_cert, data.fixtures.p256_priv)

x509_keypair_ec := crypto.x509.parse_keypair(data.fixtures.ca_cert, data.fixtures.ec_priv_sec1)

x509_keypair_wrong_key := crypto.x509.parse_keypair(data.fixtures.ca_cert, data.fixtures.p384_priv)

x509_keypair_no_cert := crypto.x509.parse_keypair(data.fixtures.rsa_priv_pkcs1, data.fixtures.rsa_priv_pkcs1)

keys_rsa_pkcs1 := crypto.parse_private_keys(data.fixtures.rsa_priv_pkcs1)

keys_rsa_pkcs8 := crypto.parse_private_keys(data.fixtures.rsa_priv_pkcs8)

keys_ec_sec1 := crypto.parse_private_keys(data.fixtures.ec_priv_sec1)

keys_p384_p521 := crypto.parse_private_keys(concat("", [data.fixtures.p384_priv, data.fixtures.p521_priv]))

keys_ed25519 := crypto.parse_private_keys(data.fixtures.ed_priv)

keys_mixed := crypto.parse_private_keys(concat("", [data.fixtures.rsa_pub, data.fixtures.leaf_cert, data.fixtures.ec_priv_sec1]))

keys_b64 := crypto.parse_private_keys(base64.encode(data.fixtures.ec_priv_sec1))

keys_empty := crypto.parse_private_keys("")

keys_none := crypto.parse_private_keys("junk")

keys_bad := crypto.parse_private_keys("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")

x509_rsa_key_after_cert := crypto.x509.parse_rsa_private_key(concat("", [data.fixtures.rsa_pub, data.fixtures.rsa_priv_pkcs1]))

x509_parse_intermediate := crypto.x509.parse_certificates(data.fixtures.int_cert)

x509_parse_rich_leaf := crypto.x509.parse_certificates(data.fixtures.leaf2_cert)

x509_verify_three_client := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.int_cert, data.fixtures.leaf3_cert]), {"KeyUsages": ["KeyUsageClientAuth"]})

x509_verify_three_default := crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.ca_cert, data.fixtures.int_cert, data.fixtures.leaf3_cert]))

x509_verify_three_unhandled_critical := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.int_cert, data.fixtures.leaf2_cert]), {"KeyUsages": ["KeyUsageClientAuth"]})

x509_verify_missing_intermediate := crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf3_cert]), {"KeyUsages": ["KeyUsageAny"]})

x509_parse_constrained_ca := crypto.x509.parse_certificates(data.fixtures.nc_ca_cert)

x509_verify_constrained_ok := crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.nc_ca_cert, data.fixtures.nc_ok_cert]))[0]

x509_verify_constrained_outside := crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.nc_ca_cert, data.fixtures.nc_out_cert]))

x509_verify_constrained_excluded := crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.nc_ca_cert, data.fixtures.nc_excl_cert]))

x509_parse_ed25519_signed := crypto.x509.parse_certificates(data.fixtures.nc_ok_cert)
