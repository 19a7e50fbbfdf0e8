package compat.uri_aws

# uri.is_valid and uri.parse (Go's net/url url.Parse), and
# providers.aws.sign_req (AWS Signature Version 4), on attacker-shaped
# input. Inputs: "urls" (a list), "bad_*" (one URL each, most of them
# refused), "aws_*" (a request, a config and a time each).

valid := {u: uri.is_valid(u) | some u in input.urls}

parsed := {u: uri.parse(u) | some u in input.urls; uri.is_valid(u)}

valid_non_string := uri.is_valid(input.number)

bad_valid := uri.is_valid(input.bad)

bad_parse := uri.parse(input.bad)

literal_parse := uri.parse("https://user:pw@example.com:8443/p%20a/b?q=1&q=2#frag")

literal_valid := [uri.is_valid("https://example.com"), uri.is_valid("::not a uri"), uri.is_valid("")]

signed := providers.aws.sign_req(input.req, input.cfg, input.ts)

signed_headers := object.keys(providers.aws.sign_req(input.req, input.cfg, input.ts).headers)

literal_signed := providers.aws.sign_req(
	{"method": "GET", "url": "https://example.amazonaws.com/path?b=2&a=1", "headers": {"x-custom": "v"}},
	{"aws_access_key": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "aws_service": "s3", "aws_region": "us-east-1"},
	1700000000000000000,
)
