package compat.encoding_errors

b64_decode_invalid := base64.decode("!!!")
hex_decode_odd := hex.decode("abc")
hex_decode_invalid := hex.decode("zz")
urlquery_decode_invalid := urlquery.decode("%zz")
b64url_decode_invalid := base64url.decode("***")
b64_decode_unpadded := base64.decode("aGk")
