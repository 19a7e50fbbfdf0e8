# io.jwt.* against test-only keys and tokens in tokens.json (data.fixtures).
# ES*/PS* signatures are randomized: their cases assert that they verify.
package compat.tokens

tampered(tok) := concat(".", [split(tok, ".")[0], base64url.encode_no_pad(`{"sub":"admin"}`), split(tok, ".")[2]])

decode_hs256 := io.jwt.decode(data.fixtures.tok_hs256)

decode_rs256 := io.jwt.decode(data.fixtures.tok_rs256)

decode_es256 := io.jwt.decode(data.fixtures.tok_es256)

decode_ps256 := io.jwt.decode(data.fixtures.tok_ps256)

decode_eddsa := io.jwt.decode(data.fixtures.tok_eddsa)

decode_nested := io.jwt.decode(data.fixtures.tok_nested)

decode_none := io.jwt.decode(data.fixtures.tok_none)

decode_jwe := io.jwt.decode(data.fixtures.tok_jwe)

decode_no_dots := io.jwt.decode("abc")

decode_two_parts := io.jwt.decode("a.b")

decode_four_parts := io.jwt.decode("a.b.c.d")

decode_bad_b64 := io.jwt.decode("%%%.e30.")

decode_bad_len := io.jwt.decode("eyJhbGciOiJIUzI1NiJ9.e30.a")

decode_array_payload := io.jwt.decode(concat(".", [base64url.encode_no_pad(`{"alg":"HS256"}`), base64url.encode_no_pad("[1,2]"), ""]))

decode_padded := io.jwt.decode(concat(".", [base64url.encode(`{"alg":"HS256","x":"a"}`), base64url.encode(`{"a":"bc"}`), "AAAA"]))

decode_dup_keys := io.jwt.decode(concat(".", [base64url.encode_no_pad(`{"alg":"HS256","a":1,"a":2}`), base64url.encode_no_pad(`{"b":1,"b":"z"}`), ""]))

verify_hs256_ok := io.jwt.verify_hs256(data.fixtures.tok_hs256, "s3cr3t-test-only")

verify_hs256_wrong := io.jwt.verify_hs256(data.fixtures.tok_hs256, "wrong")

verify_hs384_ok := io.jwt.verify_hs384(data.fixtures.tok_hs384, "s3cr3t-test-only")

verify_hs384_wrong := io.jwt.verify_hs384(data.fixtures.tok_hs384, "wrong")

verify_hs512_ok := io.jwt.verify_hs512(data.fixtures.tok_hs512, "s3cr3t-test-only")

verify_hs512_wrong := io.jwt.verify_hs512(data.fixtures.tok_hs512, "wrong")

verify_hs256_other_alg_tok := io.jwt.verify_hs256(data.fixtures.tok_hs384, "s3cr3t-test-only")

verify_hs256_tampered := io.jwt.verify_hs256(tampered(data.fixtures.tok_hs256), "s3cr3t-test-only")

verify_hs256_malformed := io.jwt.verify_hs256("a.b", "s3cr3t-test-only")

verify_hs256_bad_sig_b64 := io.jwt.verify_hs256("a.b.%%", "s3cr3t-test-only")

verify_hs256_garbage_header := io.jwt.verify_hs256(data.fixtures.tok_garbage_header, "k")

verify_rs256_pem := io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_pub)

verify_rs256_cert := io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_cert)

verify_rs256_jwk := io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_jwk_pub)

verify_rs256_wrong_key := io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa2_pub)

verify_rs384_pem := io.jwt.verify_rs384(data.fixtures.tok_rs384, data.fixtures.rsa_pub)

verify_rs384_cert := io.jwt.verify_rs384(data.fixtures.tok_rs384, data.fixtures.rsa_cert)

verify_rs384_jwk := io.jwt.verify_rs384(data.fixtures.tok_rs384, data.fixtures.rsa_jwk_pub)

verify_rs384_wrong_key := io.jwt.verify_rs384(data.fixtures.tok_rs384, data.fixtures.rsa2_pub)

verify_rs512_pem := io.jwt.verify_rs512(data.fixtures.tok_rs512, data.fixtures.rsa_pub)

verify_rs512_cert := io.jwt.verify_rs512(data.fixtures.tok_rs512, data.fixtures.rsa_cert)

verify_rs512_jwk := io.jwt.verify_rs512(data.fixtures.tok_rs512, data.fixtures.rsa_jwk_pub)

verify_rs512_wrong_key := io.jwt.verify_rs512(data.fixtures.tok_rs512, data.fixtures.rsa2_pub)

verify_ps256_pem := io.jwt.verify_ps256(data.fixtures.tok_ps256, data.fixtures.rsa_pub)

verify_ps256_cert := io.jwt.verify_ps256(data.fixtures.tok_ps256, data.fixtures.rsa_cert)

verify_ps256_jwk := io.jwt.verify_ps256(data.fixtures.tok_ps256, data.fixtures.rsa_jwk_pub)

verify_ps256_wrong_key := io.jwt.verify_ps256(data.fixtures.tok_ps256, data.fixtures.rsa2_pub)

verify_ps384_pem := io.jwt.verify_ps384(data.fixtures.tok_ps384, data.fixtures.rsa_pub)

verify_ps384_cert := io.jwt.verify_ps384(data.fixtures.tok_ps384, data.fixtures.rsa_cert)

verify_ps384_jwk := io.jwt.verify_ps384(data.fixtures.tok_ps384, data.fixtures.rsa_jwk_pub)

verify_ps384_wrong_key := io.jwt.verify_ps384(data.fixtures.tok_ps384, data.fixtures.rsa2_pub)

verify_ps512_pem := io.jwt.verify_ps512(data.fixtures.tok_ps512, data.fixtures.rsa_pub)

verify_ps512_cert := io.jwt.verify_ps512(data.fixtures.tok_ps512, data.fixtures.rsa_cert)

verify_ps512_jwk := io.jwt.verify_ps512(data.fixtures.tok_ps512, data.fixtures.rsa_jwk_pub)

verify_ps512_wrong_key := io.jwt.verify_ps512(data.fixtures.tok_ps512, data.fixtures.rsa2_pub)

verify_rs256_jwks_kid := io.jwt.verify_rs256(data.fixtures.tok_rs256_kid1, data.fixtures.rsa_jwks)

verify_rs256_jwks_kid_wrong := io.jwt.verify_rs256(data.fixtures.tok_rs256_kid2, data.fixtures.rsa_jwks)

verify_rs256_jwks_nokid := io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_jwks)

verify_rs256_jwks_alg_mismatch := io.jwt.verify_rs256(data.fixtures.tok_rs384, data.fixtures.rsa_jwks)

verify_rs256_private_jwk := io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_jwk_priv)

verify_rs256_with_ps_token := io.jwt.verify_rs256(data.fixtures.tok_ps256, data.fixtures.rsa_pub)

verify_rs384_with_rs256_token := io.jwt.verify_rs384(data.fixtures.tok_rs256, data.fixtures.rsa_pub)

verify_rs256_tampered := io.jwt.verify_rs256(tampered(data.fixtures.tok_rs256), data.fixtures.rsa_pub)

verify_rs256_ec_key := io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.p256_pub)

verify_rs256_bad_pem := io.jwt.verify_rs256(data.fixtures.tok_rs256, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")

verify_rs256_pem_extra := io.jwt.verify_rs256(data.fixtures.tok_rs256, concat("", [data.fixtures.rsa_pub, "x"]))

verify_rs256_pem_extra_nl := io.jwt.verify_rs256(data.fixtures.tok_rs256, concat("", [data.fixtures.rsa_pub, "\n"]))

verify_rs256_pem_leading := io.jwt.verify_rs256(data.fixtures.tok_rs256, concat("", ["junk\n", data.fixtures.rsa_pub]))

verify_rs256_private_pem := io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_priv_pkcs8)

verify_rs256_not_json := io.jwt.verify_rs256(data.fixtures.tok_rs256, "nope")

verify_rs256_empty_jwks := io.jwt.verify_rs256(data.fixtures.tok_rs256, `{"keys":[]}`)

verify_rs256_malformed := io.jwt.verify_rs256("a.b.c", data.fixtures.rsa_pub)

verify_es256_pem := io.jwt.verify_es256(data.fixtures.tok_es256, data.fixtures.p256_pub)

verify_es256_jwk := io.jwt.verify_es256(data.fixtures.tok_es256, data.fixtures.p256_jwk_pub)

verify_es256_wrong_key := io.jwt.verify_es256(data.fixtures.tok_es256, data.fixtures.p384_pub)

verify_es384_pem := io.jwt.verify_es384(data.fixtures.tok_es384, data.fixtures.p384_pub)

verify_es384_jwk := io.jwt.verify_es384(data.fixtures.tok_es384, data.fixtures.p384_jwk_pub)

verify_es384_wrong_key := io.jwt.verify_es384(data.fixtures.tok_es384, data.fixtures.p256_pub)

verify_es512_pem := io.jwt.verify_es512(data.fixtures.tok_es512, data.fixtures.p521_pub)

verify_es512_jwk := io.jwt.verify_es512(data.fixtures.tok_es512, data.fixtures.p521_jwk_pub)

verify_es512_wrong_key := io.jwt.verify_es512(data.fixtures.tok_es512, data.fixtures.p384_pub)

verify_es256_ca_cert := io.jwt.verify_es256(data.fixtures.tok_es256, data.fixtures.ca_cert)

verify_es256_tampered := io.jwt.verify_es256(tampered(data.fixtures.tok_es256), data.fixtures.p256_pub)

verify_es384_with_es256_token := io.jwt.verify_es384(data.fixtures.tok_es256, data.fixtures.p256_pub)

verify_eddsa_pem := io.jwt.verify_eddsa(data.fixtures.tok_eddsa, data.fixtures.ed_pub)

verify_eddsa_jwk := io.jwt.verify_eddsa(data.fixtures.tok_eddsa, data.fixtures.ed_jwk_pub)

verify_eddsa_wrong := io.jwt.verify_eddsa(data.fixtures.tok_eddsa, data.fixtures.rsa_pub)

verify_eddsa_tampered := io.jwt.verify_eddsa(tampered(data.fixtures.tok_eddsa), data.fixtures.ed_pub)

dv_hs256_ok := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1700000000000000000})

dv_hs256_no_aud_constraint := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "time": 1700000000000000000})

dv_hs256_wrong_aud := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "nope", "time": 1700000000000000000})

dv_hs256_iss_ok := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "ops", "iss": "https://issuer.warden.test", "time": 1700000000000000000})

dv_hs256_iss_wrong := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "ops", "iss": "https://evil.test", "time": 1700000000000000000})

dv_hs256_expired := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 2000000000000000000})

dv_hs256_just_before_exp := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1999999999000000000})

dv_hs256_not_yet := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1599999999000000000})

dv_hs256_at_nbf := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1600000000000000000})

dv_hs256_wrong_secret := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "nope", "aud": "api", "time": 1700000000000000000})

dv_hs256_alg_ok := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "alg": "HS256", "aud": "api", "time": 1700000000000000000})

dv_hs256_alg_mismatch := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "alg": "RS256", "aud": "api", "time": 1700000000000000000})

dv_hs256_float_exp_before := io.jwt.decode_verify(data.fixtures.tok_hs256_str_aud, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1700000000000000000})

dv_hs256_float_exp_after := io.jwt.decode_verify(data.fixtures.tok_hs256_str_aud, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1700000000600000000})

dv_hs256_no_claims := io.jwt.decode_verify(data.fixtures.tok_hs256_noclaims, {"secret": "s3cr3t-test-only"})

dv_hs256_aud_required := io.jwt.decode_verify(data.fixtures.tok_hs256_noclaims, {"secret": "s3cr3t-test-only", "aud": "api"})

dv_hs256_iss_required := io.jwt.decode_verify(data.fixtures.tok_hs256_noclaims, {"secret": "s3cr3t-test-only", "iss": "x"})

dv_crit_unknown := io.jwt.decode_verify(data.fixtures.tok_hs256_crit, {"secret": "s3cr3t-test-only"})

dv_crit_known := io.jwt.decode_verify(data.fixtures.tok_hs256_crit_known, {"secret": "s3cr3t-test-only"})

dv_nested := io.jwt.decode_verify(data.fixtures.tok_nested, {"secret": "s3cr3t-test-only"})

dv_none_alg := io.jwt.decode_verify(data.fixtures.tok_none, {"secret": "s3cr3t-test-only"})

dv_no_key := io.jwt.decode_verify(data.fixtures.tok_hs256, {"aud": "api"})

dv_two_keys := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "x", "cert": data.fixtures.rsa_pub})

dv_unknown_constraint := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "x", "foo": 1})

dv_negative_time := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "x", "time": -1})

dv_string_time := io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "x", "time": "1"})

dv_malformed := io.jwt.decode_verify("a.b", {"secret": "x"})

dv_bad_b64_header := io.jwt.decode_verify("%%.e30.AA", {"secret": "x"})

dv_jwe := io.jwt.decode_verify(data.fixtures.tok_jwe, {"secret": "x"})

dv_exp_string := io.jwt.decode_verify(data.fixtures.tok_exp_string, {"secret": "k"})

dv_nbf_string := io.jwt.decode_verify(data.fixtures.tok_nbf_string, {"secret": "k"})

dv_aud_number := io.jwt.decode_verify(data.fixtures.tok_aud_number, {"secret": "k"})

# Warden differs: regorus reads JSON integers beyond 64 bits as floats.
dv_exp_big := io.jwt.decode_verify(data.fixtures.tok_exp_big, {"secret": "k", "time": 1700000000000000000})

dv_rs256_ok := io.jwt.decode_verify(data.fixtures.tok_rs256, {"cert": data.fixtures.rsa_pub, "aud": "api", "time": 1700000000000000000})

dv_rs384_ok := io.jwt.decode_verify(data.fixtures.tok_rs384, {"cert": data.fixtures.rsa_cert, "aud": "api", "time": 1700000000000000000})

dv_rs512_ok := io.jwt.decode_verify(data.fixtures.tok_rs512, {"cert": data.fixtures.rsa_jwk_pub, "aud": "api", "time": 1700000000000000000})

dv_ps256_ok := io.jwt.decode_verify(data.fixtures.tok_ps256, {"cert": data.fixtures.rsa_pub, "aud": "api", "time": 1700000000000000000})

dv_ps384_ok := io.jwt.decode_verify(data.fixtures.tok_ps384, {"cert": data.fixtures.rsa_cert, "aud": "api", "time": 1700000000000000000})

dv_ps512_ok := io.jwt.decode_verify(data.fixtures.tok_ps512, {"cert": data.fixtures.rsa_jwk_pub, "aud": "api", "time": 1700000000000000000})

dv_es256_ok := io.jwt.decode_verify(data.fixtures.tok_es256, {"cert": data.fixtures.p256_pub, "aud": "api", "time": 1700000000000000000})

dv_es384_ok := io.jwt.decode_verify(data.fixtures.tok_es384, {"cert": data.fixtures.p384_jwk_pub, "aud": "api", "time": 1700000000000000000})

dv_es512_ok := io.jwt.decode_verify(data.fixtures.tok_es512, {"cert": data.fixtures.p521_pub, "aud": "api", "time": 1700000000000000000})

dv_eddsa_ok := io.jwt.decode_verify(data.fixtures.tok_eddsa, {"cert": data.fixtures.ed_pub, "aud": "api", "time": 1700000000000000000})

dv_rs256_wrong_key := io.jwt.decode_verify(data.fixtures.tok_rs256, {"cert": data.fixtures.rsa2_pub, "aud": "api", "time": 1700000000000000000})

dv_rs256_secret_for_rsa := io.jwt.decode_verify(data.fixtures.tok_rs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1700000000000000000})

dv_hs256_rsa_cert_for_hmac := io.jwt.decode_verify(data.fixtures.tok_hs256, {"cert": data.fixtures.rsa_pub, "aud": "api", "time": 1700000000000000000})

dv_rs256_jwks_kid := io.jwt.decode_verify(data.fixtures.tok_rs256_kid1, {"cert": data.fixtures.rsa_jwks, "aud": "api"})

dv_rs256_jwks_kid_wrong := io.jwt.decode_verify(data.fixtures.tok_rs256_kid2, {"cert": data.fixtures.rsa_jwks})

dv_rs256_private_jwk := io.jwt.decode_verify(data.fixtures.tok_rs256, {"cert": data.fixtures.rsa_jwk_priv, "aud": "api", "time": 1700000000000000000})

dv_es256_tampered := io.jwt.decode_verify(tampered(data.fixtures.tok_es256), {"cert": data.fixtures.p256_pub, "aud": "api", "time": 1700000000000000000})

dv_rs256_tampered := io.jwt.decode_verify(tampered(data.fixtures.tok_rs256), {"cert": data.fixtures.rsa_pub, "aud": "api", "time": 1700000000000000000})

dv_oct_jwks_hs256 := io.jwt.decode_verify(data.fixtures.tok_hs256, {"cert": data.fixtures.oct_jwks, "aud": "api", "time": 1700000000000000000})

dv_es256_as_es384_key := io.jwt.decode_verify(data.fixtures.tok_es256, {"cert": data.fixtures.p384_pub, "aud": "api", "time": 1700000000000000000})

sign_hs256 := io.jwt.encode_sign({"alg": "HS256", "typ": "JWT"}, {"sub": "Zoë 雪", "n": 1, "html": "<a&b>", "z": [true, null]}, data.fixtures.oct_jwk)

sign_hs384 := io.jwt.encode_sign({"alg": "HS384"}, {"a": "\u2028", "b": "\u0001\b\f\t"}, data.fixtures.oct_jwk)

sign_hs512_set := io.jwt.encode_sign({"alg": "HS512", "kid": "k"}, {"s": {3, 1, 2}}, {"keys": [data.fixtures.oct_jwk]})

sign_rs256 := io.jwt.encode_sign({"alg": "RS256", "typ": "JWT"}, {"iss": "warden", "aud": ["a", "b"], "exp": 2000000000}, json.unmarshal(data.fixtures.rsa_jwk_priv))

sign_rs384 := io.jwt.encode_sign({"alg": "RS384"}, {"x": 1.5}, json.unmarshal(data.fixtures.rsa_jwk_priv))

sign_rs512 := io.jwt.encode_sign({"alg": "RS512"}, {}, json.unmarshal(data.fixtures.rsa_jwk_priv))

sign_eddsa := io.jwt.encode_sign({"alg": "EdDSA"}, {"a": "b"}, json.unmarshal(data.fixtures.ed_jwk_priv))

sign_raw_hs256 := io.jwt.encode_sign_raw(`{"typ":"JWT", "alg":"HS256"}`, `{"b": 2,  "a":1}`, data.fixtures.oct_jwk_text)

sign_raw_rs256 := io.jwt.encode_sign_raw(`{"alg":"RS256"}`, `{"sub":"x"}`, data.fixtures.rsa_jwk_priv)

sign_raw_not_json_payload := io.jwt.encode_sign_raw(`{"alg":"HS256"}`, `not json`, data.fixtures.oct_jwk_text)

sign_raw_not_json_payload_typ := io.jwt.encode_sign_raw(`{"alg":"HS256","typ":"text"}`, `not json`, data.fixtures.oct_jwk_text)

sign_unknown_alg := io.jwt.encode_sign({"alg": "none"}, {}, data.fixtures.oct_jwk)

sign_no_alg := io.jwt.encode_sign({}, {}, data.fixtures.oct_jwk)

sign_wrong_key_type := io.jwt.encode_sign({"alg": "RS256"}, {}, data.fixtures.oct_jwk)

sign_public_key_only := io.jwt.encode_sign({"alg": "RS256"}, {}, json.unmarshal(data.fixtures.rsa_jwk_pub))

sign_ps256_verifies := io.jwt.verify_ps256(io.jwt.encode_sign({"alg": "PS256"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), data.fixtures.rsa_pub)

sign_ps256_decode_verify := io.jwt.decode_verify(io.jwt.encode_sign({"alg": "PS256"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), {"cert": data.fixtures.rsa_pub})

sign_ps384_verifies := io.jwt.verify_ps384(io.jwt.encode_sign({"alg": "PS384"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), data.fixtures.rsa_pub)

sign_ps384_decode_verify := io.jwt.decode_verify(io.jwt.encode_sign({"alg": "PS384"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), {"cert": data.fixtures.rsa_pub})

sign_ps512_verifies := io.jwt.verify_ps512(io.jwt.encode_sign({"alg": "PS512"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), data.fixtures.rsa_pub)

sign_ps512_decode_verify := io.jwt.decode_verify(io.jwt.encode_sign({"alg": "PS512"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), {"cert": data.fixtures.rsa_pub})

sign_es256_verifies := io.jwt.verify_es256(io.jwt.encode_sign({"alg": "ES256"}, {"a": 1}, json.unmarshal(data.fixtures.p256_jwk_priv)), data.fixtures.p256_pub)

sign_es256_decode_verify := io.jwt.decode_verify(io.jwt.encode_sign({"alg": "ES256"}, {"a": 1}, json.unmarshal(data.fixtures.p256_jwk_priv)), {"cert": data.fixtures.p256_pub})

sign_es384_verifies := io.jwt.verify_es384(io.jwt.encode_sign({"alg": "ES384"}, {"a": 1}, json.unmarshal(data.fixtures.p384_jwk_priv)), data.fixtures.p384_pub)

sign_es384_decode_verify := io.jwt.decode_verify(io.jwt.encode_sign({"alg": "ES384"}, {"a": 1}, json.unmarshal(data.fixtures.p384_jwk_priv)), {"cert": data.fixtures.p384_pub})

sign_es512_verifies := io.jwt.verify_es512(io.jwt.encode_sign({"alg": "ES512"}, {"a": 1}, json.unmarshal(data.fixtures.p521_jwk_priv)), data.fixtures.p521_pub)

sign_es512_decode_verify := io.jwt.decode_verify(io.jwt.encode_sign({"alg": "ES512"}, {"a": 1}, json.unmarshal(data.fixtures.p521_jwk_priv)), {"cert": data.fixtures.p521_pub})

sign_roundtrip_hs := io.jwt.decode_verify(io.jwt.encode_sign({"alg": "HS256"}, {"iss": "me", "aud": "you", "exp": 2000000000}, data.fixtures.oct_jwk), {"secret": "s3cr3t-test-only", "iss": "me", "aud": "you", "time": 1700000000000000000})

verify_rs256_jwks_x25519 := io.jwt.verify_rs256(data.fixtures.tok_rs256, json.marshal({"keys": [{"kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}, json.unmarshal(data.fixtures.rsa_jwk_pub)]}))

verify_rs256_jwk_unknown_alg := io.jwt.verify_rs256(data.fixtures.tok_rs256, json.marshal(object.union(json.unmarshal(data.fixtures.rsa_jwk_pub), {"alg": "RSA-OAEP"})))

verify_rs256_jwk_unknown_kty := io.jwt.verify_rs256(data.fixtures.tok_rs256, json.marshal({"keys": [{"kty": "foo"}, json.unmarshal(data.fixtures.rsa_jwk_pub)]}))

verify_rs256_jwk_padded := io.jwt.verify_rs256(data.fixtures.tok_rs256, json.marshal(object.union(json.unmarshal(data.fixtures.rsa_jwk_pub), {"e": "AQAB"})))

verify_rs256_jwk_array := io.jwt.verify_rs256(data.fixtures.tok_rs256, json.marshal([json.unmarshal(data.fixtures.rsa_jwk_pub)]))

sign_es384_with_p256_key_verifies := io.jwt.verify_es384(io.jwt.encode_sign({"alg": "ES384"}, {"a": 1}, json.unmarshal(data.fixtures.p256_jwk_priv)), data.fixtures.p256_pub)

sign_raw_ws_header := io.jwt.encode_sign_raw(`{ "alg" : "HS256" }`, `{"a" : 1}`, data.fixtures.oct_jwk_text)

sign_hs256_jwks_first := io.jwt.encode_sign({"alg": "HS256"}, {"a": 1}, {"keys": [data.fixtures.oct_jwk, json.unmarshal(data.fixtures.rsa_jwk_priv)]})

dv_jwks_kid_alg_mismatch := io.jwt.decode_verify(data.fixtures.tok_rs256_kid1, {"cert": json.marshal({"keys": [object.union(json.unmarshal(data.fixtures.rsa_jwk_pub), {"kid": "k1", "alg": "PS256"})]})})

verify_es256_jwk_with_d := io.jwt.verify_es256(data.fixtures.tok_es256, data.fixtures.p256_jwk_priv)

dv_es256_private_jwk := io.jwt.decode_verify(data.fixtures.tok_es256, {"cert": data.fixtures.p256_jwk_priv, "aud": "api", "time": 1700000000000000000})

verify_eddsa_private_jwk := io.jwt.verify_eddsa(data.fixtures.tok_eddsa, data.fixtures.ed_jwk_priv)

decode_cty_jwt_lower := io.jwt.decode(concat(".", [base64url.encode_no_pad(`{"alg":"HS256","cty":"jwt"}`), base64url.encode_no_pad(`{"a":1}`), ""]))

decode_header_not_object := io.jwt.decode(concat(".", [base64url.encode_no_pad(`"x"`), base64url.encode_no_pad(`{"a":1}`), ""]))
