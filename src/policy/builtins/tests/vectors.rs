//! Test vectors for the JWT and digest builtins: test-only keys, certificates
//! and tokens generated for these tests (no real secrets), and the answers
//! OPA 1.x gave for each expression (`None`: undefined, a builtin error).

/// The data document: `data.fixtures` holds every key, certificate and token.
pub(super) const FIXTURES: &str = r#"{
 "fixtures": {
  "rsa_priv_pkcs1": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywD\nh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpI\nG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ\n1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42v\nsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4x\nO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQABAoIBAEzVMAflsxbRFKqK\nr8tFlfg8SX2qbCf99f4kvSXxi9rNaBMEHK7UONyQGpL6yI/P7vUoYU8/mYNHOPG3\n/XOcZQ13CAeESe9OWqlW/WHc23Lo9d4b5pNFOr9bACn+US+fxNdm9TG2YrO1V5Bm\natAnj9sPPOBm8eX+GaaY72fwYKA5oI4kSotOMVxScwLFtNDdxdpr3fdkNcnbD8WQ\nKISam4IpPxTmFeYR3GOzVT7Ho7X3m8iJhrBD1QpTp2evkywhq1oQUaf7U+R8i19w\nVk0v3ubISqy1L9P6TC/9B6cEfSoFWyEydK26dY5cok17v3OYbmOUES4ptTX/ucLB\ns5WLu+ECgYEA+pLByGuFTd39MaCp5xiySYha8U7MJoSJHhk8bWkSV4o7I8aqJ0B3\nlviL/WBzVudlc5i9FtqX155MOumJomsjtqh2af7nPm9FILtmo5DTINgBuMhK51VR\nw2RgmW3kg8RyL+zy695piMxt8VfW2l7HF8xBqw+9TEQPbbVpFQGHlOsCgYEA88/5\nTK7rrk22Cv/1vv2YnVL7ZIvd4eotAUYXUh7yQxQqA1UYiT+KaCZD1c9bOfjhq8S1\nI1LCsphovjI8z9BYNN+42BE5qymzal2T+JcLhZor6fECN6CMgFgMnYNB5x7f36g4\nLPO0SVhuFD3jlLp7ToNed9/+GX3pWXeoJn83yOUCgYAxdZZagR6m6BJ6IURoIS/P\n4+JPj0YstCx8jG6pCfxc2yQhQ62CYe85FYZMVSVvGe2ki5mHUU53eP+DAWXxcURz\nYX0+Htp2MHBsrZDs6EFEUl7EooRmdSjWcJHAtzhL6hK/8v1gIV6jafaplLUMFXkm\n8WJk6Y5r52NEPHKpesvQUQKBgF7pDvsy/LwVtFAD4/49ajOUIhi5+d3/8xUT2/Az\n68sBBnnVnn+PJKn2e2G4HqMqp27eXEUr6m7rtZqUo+eiCzRKAwLZccGXsigt1XRo\nGCwiIAYps9tDvG4Z2I9YkUcPVccTDQsys3P54KAwl29GSMn/ib7Qi3IQ+c3CLssN\nqwGhAoGBAKxXjx/LmFgpGk0dOGYXI1p5UKfr6kPvVua7o4x82c+nki0sujUxt3uG\n6M7woZiOEv4Y/ny0tXiIFrG1G+Q3lVctJssPaPejmanEoYqeprF+l70pY8s6R92v\nUebzC5jv8t+hr+w5qh/5xMM3gXfz2l+63U2JHOPEatCWbVZlvFGT\n-----END RSA PRIVATE KEY-----\n",
  "rsa_priv_pkcs8": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDupN6fvGJg0i4+\nyn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEd\nkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9\nldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzR\nIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4\nPcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8\nUt/eHM43AgMBAAECggEATNUwB+WzFtEUqoqvy0WV+DxJfapsJ/31/iS9JfGL2s1o\nEwQcrtQ43JAakvrIj8/u9ShhTz+Zg0c48bf9c5xlDXcIB4RJ705aqVb9Ydzbcuj1\n3hvmk0U6v1sAKf5RL5/E12b1MbZis7VXkGZq0CeP2w884Gbx5f4ZppjvZ/BgoDmg\njiRKi04xXFJzAsW00N3F2mvd92Q1ydsPxZAohJqbgik/FOYV5hHcY7NVPsejtfeb\nyImGsEPVClOnZ6+TLCGrWhBRp/tT5HyLX3BWTS/e5shKrLUv0/pML/0HpwR9KgVb\nITJ0rbp1jlyiTXu/c5huY5QRLim1Nf+5wsGzlYu74QKBgQD6ksHIa4VN3f0xoKnn\nGLJJiFrxTswmhIkeGTxtaRJXijsjxqonQHeW+Iv9YHNW52VzmL0W2pfXnkw66Ymi\nayO2qHZp/uc+b0Ugu2ajkNMg2AG4yErnVVHDZGCZbeSDxHIv7PLr3mmIzG3xV9ba\nXscXzEGrD71MRA9ttWkVAYeU6wKBgQDzz/lMruuuTbYK//W+/ZidUvtki93h6i0B\nRhdSHvJDFCoDVRiJP4poJkPVz1s5+OGrxLUjUsKymGi+MjzP0Fg037jYETmrKbNq\nXZP4lwuFmivp8QI3oIyAWAydg0HnHt/fqDgs87RJWG4UPeOUuntOg1533/4ZfelZ\nd6gmfzfI5QKBgDF1llqBHqboEnohRGghL8/j4k+PRiy0LHyMbqkJ/FzbJCFDrYJh\n7zkVhkxVJW8Z7aSLmYdRTnd4/4MBZfFxRHNhfT4e2nYwcGytkOzoQURSXsSihGZ1\nKNZwkcC3OEvqEr/y/WAhXqNp9qmUtQwVeSbxYmTpjmvnY0Q8cql6y9BRAoGAXukO\n+zL8vBW0UAPj/j1qM5QiGLn53f/zFRPb8DPrywEGedWef48kqfZ7Ybgeoyqnbt5c\nRSvqbuu1mpSj56ILNEoDAtlxwZeyKC3VdGgYLCIgBimz20O8bhnYj1iRRw9VxxMN\nCzKzc/ngoDCXb0ZIyf+JvtCLchD5zcIuyw2rAaECgYEArFePH8uYWCkaTR04Zhcj\nWnlQp+vqQ+9W5rujjHzZz6eSLSy6NTG3e4bozvChmI4S/hj+fLS1eIgWsbUb5DeV\nVy0myw9o96OZqcShip6msX6XvSljyzpH3a9R5vMLmO/y36Gv7DmqH/nEwzeBd/Pa\nX7rdTYkc48Rq0JZtVmW8UZM=\n-----END PRIVATE KEY-----\n",
  "rsa_pub": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPs\nwV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF\n97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLk\nB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwh\nclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/\nJ/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzO\nNwIDAQAB\n-----END PUBLIC KEY-----\n",
  "rsa2_pub": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxe98asvk01ApAia0jQGx\nev7NaDy2YfzcuJTMKQ3mD23MC/Onn6cdzZSpeJeUiIFaiaG1PPz6k1gu3o41Fna8\nOgMQ74OqAcAXufCO8M/sLmY0ERtPY47193OjuGvJj39eKLIykkPZX72dQu1YgdAD\nkZkEeh0/CUzhoLd7cFD46eF+Qy5RBSL1f1sp39b6SMmm8Y4xpkYkPmbWico1T9FT\nI509DHnZCyskgYtzGG0xtIXWl92wE8vY6oAO1DB8OM+ONIYk9TBsype8o6FJykLp\n0fuPqQwYb6PWQ8H8/Bc8iQlldBVDfTDcdsJAzpORC2soxJj54KdUhteQUDe6NG2H\nvwIDAQAB\n-----END PUBLIC KEY-----\n",
  "rsa_cert": "-----BEGIN CERTIFICATE-----\nMIICoTCCAYmgAwIBAgIBBzANBgkqhkiG9w0BAQsFADATMREwDwYDVQQDDAhyc2Et\nc2VsZjAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowEzERMA8GA1UE\nAwwIcnNhLXNlbGYwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6f\nvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ\n/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70Oc\njibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV\n00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vM\nDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU\n+mIEa/y8Ut/eHM43AgMBAAEwDQYJKoZIhvcNAQELBQADggEBADL7ECljHJwx49mk\nrdt7S5qN5/BBE9aTRLbUXCAusEc3Ia/CT8Dt+WrRbRjiDAF290kR94x30J+rRFK3\n1S+iAITVIVASqPxX+VUUsjwYkpMmLAlYKCGggeCabVoRKNMxf/J9Mt19kwiWotyK\n/m0QNG/9yD/0g8mXxXX6sqPiZGhFw+uYxrQ8TuBRdOJxSPFm+pgaPPn+1I274YCX\ntuCUW9CPX5SJIeVxMUWaL8zzxs3Y4aYRY76s9ptWNvzl4JMhe+5DO/qKuzT4EKxw\nL9dIz6FDMERyHI6J/N2E7809DT5der3r3yuPRZYpv5yGJRYSZyExATLFZp4S1de6\npvm5qog=\n-----END CERTIFICATE-----\n",
  "ca_cert": "-----BEGIN CERTIFICATE-----\nMIIBmDCCAT2gAwIBAgICEAAwCgYIKoZIzj0EAwIwQTELMAkGA1UEBhMCREUxFzAV\nBgNVBAoMDldhcmRlbiBUZXN0IENBMRkwFwYDVQQDDBBXYXJkZW4gVGVzdCBSb290\nMCAXDTI1MDEwMTAwMDAwMFoYDzIxMjQxMjA4MDAwMDAwWjBBMQswCQYDVQQGEwJE\nRTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0\nIFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQjb4YxICOemW7STIx467O0\n/+pyHm4DwWZDh1FqrnrRlmdylzHpCZ5+7uxBzg1P1yI3G3pZ/BENVUeuFTzcq07+\noyMwITAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAKBggqhkjOPQQD\nAgNJADBGAiEAq23XPPvbZ8fYhpUj3zmXXxccxR5xchI3xt6mslF1kmMCIQChdeVi\noTjIKihmU5SbIIORkqG/5xhQ4HYIlj8eRShXkQ==\n-----END CERTIFICATE-----\n",
  "leaf_cert": "-----BEGIN CERTIFICATE-----\nMIIC9TCCApqgAwIBAgIKEjRWeJCrze8SNDAKBggqhkjOPQQDAjBBMQswCQYDVQQG\nEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBU\nZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMD8xGDAW\nBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDEL\nMAkGA1UECwwCUUEwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6f\nvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ\n/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70Oc\njibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV\n00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vM\nDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU\n+mIEa/y8Ut/eHM43AgMBAAGjga4wgaswbAYDVR0RBGUwY4IPc3ZjLndhcmRlbi50\nZXN0gg0qLndhcmRlbi50ZXN0gQ9vcHNAd2FyZGVuLnRlc3SHBAoAAAGHECABDbgA\nAAAAAAAAAAAAAAGGGHNwaWZmZTovL3dhcmRlbi50ZXN0L3N2YzAMBgNVHRMBAf8E\nAjAAMA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUH\nAwIwCgYIKoZIzj0EAwIDSQAwRgIhAMjFan1ttruy5T+K9hYT04/u1lkvKtGcXUR8\n/Xmc6zn3AiEAy6lT221Al9JuXP9dMy4P6GgQ8VvGpnBcbuUG7Mp1z5Q=\n-----END CERTIFICATE-----\n",
  "csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIICsTCCAZkCAQAwPzEYMBYGA1UEAwwPc3ZjLndhcmRlbi50ZXN0MRYwFAYDVQQK\nDA1Xw6RyZGVuIMOcbml0MQswCQYDVQQLDAJRQTCCASIwDQYJKoZIhvcNAQEBBQAD\nggEPADCCAQoCggEBAO6k3p+8YmDSLj7Kf7VT7MFfxbCN1EEnblw93kFOfwJksBMs\nA4enkrfYrfjJDrx/6YshOZn/0Ks5wR2RDGtGhfezxrdOAbGT5bFNldMvSPBgx6T6\nSBtSCqKl31nP5WFQ26PvQ5yOJtmc172V2oRS5AePT4mhlkNDgISeFtHxDzKOMdc3\nCdbYzO6lZb9zC0GpeQivlpXTTGaRjNEhi0XcIXJWm81yKYmpmnAY+Ou6mfiI85eN\nr7ElOGq9iRdlIMtKgmk3y8wNQYh5x3g9zDhAPyf3AfQSBFTFkH2w6SXOxennHOk+\nMTvnNwyrThEqvuAWso2UpNT6YgRr/LxS394czjcCAwEAAaAtMCsGCSqGSIb3DQEJ\nDjEeMBwwGgYDVR0RBBMwEYIPc3ZjLndhcmRlbi50ZXN0MA0GCSqGSIb3DQEBCwUA\nA4IBAQAUtLPaxAjmpAkU1gCnC44E+llDC1GNdybld3kCRBoHIKCe6vAB8y1xOsYD\nGwLK/NnqJha0rCAGz+TsFXHkNdcizSb8r5R9W19NDtWhKH07c3xpUnXlqppEIhit\nZ/tLooOqcMWaN+CGCdUY+ESGMFYj7ctVd3gFaVp9pglxttwAk/TIFA702X9MqhXS\ndMGaPbHaDqfomA3S0H69I/f2Bff+ej2dszIXUVKfgxFaFryDssoRjr+ymld7atbb\nolbhAvOTHustxHr+P420DqInso2M05Gz416lTGOwGvC26s8d7xgvKgapSbqRXQZ6\nAUc7obgfHYBemJV8mByWJhpmE4EQ\n-----END CERTIFICATE REQUEST-----\n",
  "rsa_jwk_pub": "{\"kty\": \"RSA\", \"n\": \"7qTen7xiYNIuPsp_tVPswV_FsI3UQSduXD3eQU5_AmSwEywDh6eSt9it-MkOvH_piyE5mf_QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc_lYVDbo-9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK-WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ-Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA_J_cB9BIEVMWQfbDpJc7F6ecc6T4xO-c3DKtOESq-4BayjZSk1PpiBGv8vFLf3hzONw\", \"e\": \"AQAB\"}",
  "rsa_jwk_priv": "{\"kty\": \"RSA\", \"n\": \"7qTen7xiYNIuPsp_tVPswV_FsI3UQSduXD3eQU5_AmSwEywDh6eSt9it-MkOvH_piyE5mf_QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc_lYVDbo-9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK-WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ-Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA_J_cB9BIEVMWQfbDpJc7F6ecc6T4xO-c3DKtOESq-4BayjZSk1PpiBGv8vFLf3hzONw\", \"e\": \"AQAB\", \"d\": \"TNUwB-WzFtEUqoqvy0WV-DxJfapsJ_31_iS9JfGL2s1oEwQcrtQ43JAakvrIj8_u9ShhTz-Zg0c48bf9c5xlDXcIB4RJ705aqVb9Ydzbcuj13hvmk0U6v1sAKf5RL5_E12b1MbZis7VXkGZq0CeP2w884Gbx5f4ZppjvZ_BgoDmgjiRKi04xXFJzAsW00N3F2mvd92Q1ydsPxZAohJqbgik_FOYV5hHcY7NVPsejtfebyImGsEPVClOnZ6-TLCGrWhBRp_tT5HyLX3BWTS_e5shKrLUv0_pML_0HpwR9KgVbITJ0rbp1jlyiTXu_c5huY5QRLim1Nf-5wsGzlYu74Q\", \"p\": \"-pLByGuFTd39MaCp5xiySYha8U7MJoSJHhk8bWkSV4o7I8aqJ0B3lviL_WBzVudlc5i9FtqX155MOumJomsjtqh2af7nPm9FILtmo5DTINgBuMhK51VRw2RgmW3kg8RyL-zy695piMxt8VfW2l7HF8xBqw-9TEQPbbVpFQGHlOs\", \"q\": \"88_5TK7rrk22Cv_1vv2YnVL7ZIvd4eotAUYXUh7yQxQqA1UYiT-KaCZD1c9bOfjhq8S1I1LCsphovjI8z9BYNN-42BE5qymzal2T-JcLhZor6fECN6CMgFgMnYNB5x7f36g4LPO0SVhuFD3jlLp7ToNed9_-GX3pWXeoJn83yOU\", \"dp\": \"MXWWWoEepugSeiFEaCEvz-PiT49GLLQsfIxuqQn8XNskIUOtgmHvORWGTFUlbxntpIuZh1FOd3j_gwFl8XFEc2F9Ph7adjBwbK2Q7OhBRFJexKKEZnUo1nCRwLc4S-oSv_L9YCFeo2n2qZS1DBV5JvFiZOmOa-djRDxyqXrL0FE\", \"dq\": \"XukO-zL8vBW0UAPj_j1qM5QiGLn53f_zFRPb8DPrywEGedWef48kqfZ7Ybgeoyqnbt5cRSvqbuu1mpSj56ILNEoDAtlxwZeyKC3VdGgYLCIgBimz20O8bhnYj1iRRw9VxxMNCzKzc_ngoDCXb0ZIyf-JvtCLchD5zcIuyw2rAaE\", \"qi\": \"rFePH8uYWCkaTR04ZhcjWnlQp-vqQ-9W5rujjHzZz6eSLSy6NTG3e4bozvChmI4S_hj-fLS1eIgWsbUb5DeVVy0myw9o96OZqcShip6msX6XvSljyzpH3a9R5vMLmO_y36Gv7DmqH_nEwzeBd_PaX7rdTYkc48Rq0JZtVmW8UZM\"}",
  "rsa_jwks": "{\"keys\": [{\"kty\": \"RSA\", \"n\": \"xe98asvk01ApAia0jQGxev7NaDy2YfzcuJTMKQ3mD23MC_Onn6cdzZSpeJeUiIFaiaG1PPz6k1gu3o41Fna8OgMQ74OqAcAXufCO8M_sLmY0ERtPY47193OjuGvJj39eKLIykkPZX72dQu1YgdADkZkEeh0_CUzhoLd7cFD46eF-Qy5RBSL1f1sp39b6SMmm8Y4xpkYkPmbWico1T9FTI509DHnZCyskgYtzGG0xtIXWl92wE8vY6oAO1DB8OM-ONIYk9TBsype8o6FJykLp0fuPqQwYb6PWQ8H8_Bc8iQlldBVDfTDcdsJAzpORC2soxJj54KdUhteQUDe6NG2Hvw\", \"e\": \"AQAB\", \"kid\": \"k2\", \"alg\": \"RS256\"}, {\"kty\": \"RSA\", \"n\": \"7qTen7xiYNIuPsp_tVPswV_FsI3UQSduXD3eQU5_AmSwEywDh6eSt9it-MkOvH_piyE5mf_QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc_lYVDbo-9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK-WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ-Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA_J_cB9BIEVMWQfbDpJc7F6ecc6T4xO-c3DKtOESq-4BayjZSk1PpiBGv8vFLf3hzONw\", \"e\": \"AQAB\", \"kid\": \"k1\", \"alg\": \"RS256\"}]}",
  "ed_pub": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEABpCpjimL6iaRfygpgzIEnmW0t+4h7wjZANLWoz6JTyg=\n-----END PUBLIC KEY-----\n",
  "ed_jwk_priv": "{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": \"BpCpjimL6iaRfygpgzIEnmW0t-4h7wjZANLWoz6JTyg\", \"d\": \"TFF6cOTaAU2-MTy2-6aJwpj9kgedf7GkXnb0kVpTBiA\"}",
  "ed_jwk_pub": "{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": \"BpCpjimL6iaRfygpgzIEnmW0t-4h7wjZANLWoz6JTyg\"}",
  "p256_pub": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI2+GMSAjnplu0kyMeOuztP/qch5u\nA8FmQ4dRaq560ZZncpcx6Qmefu7sQc4NT9ciNxt6WfwRDVVHrhU83KtO/g==\n-----END PUBLIC KEY-----\n",
  "p256_jwk_priv": "{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"I2-GMSAjnplu0kyMeOuztP_qch5uA8FmQ4dRaq560ZY\", \"y\": \"Z3KXMekJnn7u7EHODU_XIjcbeln8EQ1VR64VPNyrTv4\", \"d\": \"YcH-YuY3PtIoPTSviJY9_vzUcKWNAz9T1Pwselu43s8\"}",
  "p256_jwk_pub": "{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"I2-GMSAjnplu0kyMeOuztP_qch5uA8FmQ4dRaq560ZY\", \"y\": \"Z3KXMekJnn7u7EHODU_XIjcbeln8EQ1VR64VPNyrTv4\"}",
  "p256_priv": "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYcH+YuY3PtIoPTSv\niJY9/vzUcKWNAz9T1Pwselu43s+hRANCAAQjb4YxICOemW7STIx467O0/+pyHm4D\nwWZDh1FqrnrRlmdylzHpCZ5+7uxBzg1P1yI3G3pZ/BENVUeuFTzcq07+\n-----END PRIVATE KEY-----\n",
  "p384_pub": "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEw8S3tHiVS6itIzlIBGXC96CDS/ROmWXG\nRAR70q3PlXW82aP9NpOylkegkD5epdeL5ZgkCekr/Xu/P0mp9qynTmL8P9VXnFMQ\npzWWXaSmSgFin3TVtkWyeO3MGa4J/5fz\n-----END PUBLIC KEY-----\n",
  "p384_jwk_priv": "{\"kty\": \"EC\", \"crv\": \"P-384\", \"x\": \"w8S3tHiVS6itIzlIBGXC96CDS_ROmWXGRAR70q3PlXW82aP9NpOylkegkD5epdeL\", \"y\": \"5ZgkCekr_Xu_P0mp9qynTmL8P9VXnFMQpzWWXaSmSgFin3TVtkWyeO3MGa4J_5fz\", \"d\": \"W6OA7SGYABEs6UI3E4ba4hgDfxct8vWiY-6GVe0k6srC_6ujnECQhWB_D07070Tx\"}",
  "p384_jwk_pub": "{\"kty\": \"EC\", \"crv\": \"P-384\", \"x\": \"w8S3tHiVS6itIzlIBGXC96CDS_ROmWXGRAR70q3PlXW82aP9NpOylkegkD5epdeL\", \"y\": \"5ZgkCekr_Xu_P0mp9qynTmL8P9VXnFMQpzWWXaSmSgFin3TVtkWyeO3MGa4J_5fz\"}",
  "p384_priv": "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBbo4DtIZgAESzpQjcT\nhtriGAN/Fy3y9aJj7oZV7STqysL/q6OcQJCFYH8PTvTvRPGhZANiAATDxLe0eJVL\nqK0jOUgEZcL3oINL9E6ZZcZEBHvSrc+VdbzZo/02k7KWR6CQPl6l14vlmCQJ6Sv9\ne78/San2rKdOYvw/1VecUxCnNZZdpKZKAWKfdNW2RbJ47cwZrgn/l/M=\n-----END PRIVATE KEY-----\n",
  "p521_pub": "-----BEGIN PUBLIC KEY-----\nMIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQAwM6R9NRM0ZR3ibem6Khg1v3wPpu1\n9P60jI6GTEupJ4fo8fg7S0QGM/6OXz9XrJAccrL9q2g86eSrRkUF4IEsa+8AdhUm\ndTLFRQg+7t3enujSssL7nXuEjuAKraFyBLmthEBgofsSTGPmyZfjqjIgu9PlQ7K4\nxAwluyhd0SxOoXe/YkI=\n-----END PUBLIC KEY-----\n",
  "p521_jwk_priv": "{\"kty\": \"EC\", \"crv\": \"P-521\", \"x\": \"AMDOkfTUTNGUd4m3puioYNb98D6btfT-tIyOhkxLqSeH6PH4O0tEBjP-jl8_V6yQHHKy_atoPOnkq0ZFBeCBLGvv\", \"y\": \"AHYVJnUyxUUIPu7d3p7o0rLC-517hI7gCq2hcgS5rYRAYKH7Ekxj5smX46oyILvT5UOyuMQMJbsoXdEsTqF3v2JC\", \"d\": \"AMWBi0YQ2iZAU_JBX_fw5vu4Rf62XjZo3Z9BuvuvjWYhNNgY0MiHW9dVLRlsnZLM3C9b7YXfsAimG-DxyqnlizWv\"}",
  "p521_jwk_pub": "{\"kty\": \"EC\", \"crv\": \"P-521\", \"x\": \"AMDOkfTUTNGUd4m3puioYNb98D6btfT-tIyOhkxLqSeH6PH4O0tEBjP-jl8_V6yQHHKy_atoPOnkq0ZFBeCBLGvv\", \"y\": \"AHYVJnUyxUUIPu7d3p7o0rLC-517hI7gCq2hcgS5rYRAYKH7Ekxj5smX46oyILvT5UOyuMQMJbsoXdEsTqF3v2JC\"}",
  "p521_priv": "-----BEGIN PRIVATE KEY-----\nMIHuAgEAMBAGByqGSM49AgEGBSuBBAAjBIHWMIHTAgEBBEIAxYGLRhDaJkBT8kFf\n9/Dm+7hF/rZeNmjdn0G6+6+NZiE02BjQyIdb11UtGWydkszcL1vthd+wCKYb4PHK\nqeWLNa+hgYkDgYYABADAzpH01EzRlHeJt6boqGDW/fA+m7X0/rSMjoZMS6knh+jx\n+DtLRAYz/o5fP1eskBxysv2raDzp5KtGRQXggSxr7wB2FSZ1MsVFCD7u3d6e6NKy\nwvude4SO4AqtoXIEua2EQGCh+xJMY+bJl+OqMiC70+VDsrjEDCW7KF3RLE6hd79i\nQg==\n-----END PRIVATE KEY-----\n",
  "ec_priv_sec1": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIGHB/mLmNz7SKD00r4iWPf781HCljQM/U9T8LHpbuN7PoAoGCCqGSM49\nAwEHoUQDQgAEI2+GMSAjnplu0kyMeOuztP/qch5uA8FmQ4dRaq560ZZncpcx6Qme\nfu7sQc4NT9ciNxt6WfwRDVVHrhU83KtO/g==\n-----END EC PRIVATE KEY-----\n",
  "ed_priv": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIExRenDk2gFNvjE8tvumicKY/ZIHnX+xpF529JFaUwYg\n-----END PRIVATE KEY-----\n",
  "tok_hs256": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.Ad8a98GjdM_SD34zxiAovoOEn6ZhRDMtMAIopXpVNE4",
  "tok_hs384": "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.RJUr8aDt7jQMTSRkRaJ1Jv4bV2Ze4g9sxIveiB1tY3Q9mj4ntTA96VgzrOb0hiOX",
  "tok_hs512": "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.Gfosfb2igQu0zuldN91Emif1ohaZi1kvm9t6jmvF46Ytan0l4gY54tB4s4bnaU_BfujIlPIuzJsfetiRdbI4MQ",
  "tok_rs256": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.6oxii5-3FZLvxw9vzLt9NVeXhOcL7MuU_nUy_ByIurR1hV_idzcgtpeislnUlNeUkXBb3sR_VxTpKsrCxoGgtoQd1FPL_o-WfU7divUi7i64WrSes9oaLm9sono-W0Nqz_jcVJ4Ht6-Gp8_1lI829NdR3txneKXNvhW2EHt77aDFLHrVIDp9lVkk7R4X6tRqg49qKGHDUUozsfOMt1T9b3j_wj59HkA3Grn53f9YudfEEFlkJPffkC91eHWnEj-LdV7_tGX_IOMW93QOM90ceoWp0bkaWngSNVOYX2bLFQVpffinyTsbTJyliDQvcdblpNRNMank0mknWEitwLplZg",
  "tok_rs384": "eyJhbGciOiJSUzM4NCIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.b7PVj--FvaS-BA3NNpq-XKaYmnS9v3-8aIj1tZg1_NWErC47Tu9_YQPmPwo5eiHXaEq9CpjGkliujEfmsZQGdMLnVPN8xVzPZ8dSnP3Z5XDO-4rPoH8yTr5BD9fDsoyrRvfUqe2ZNn4lTMn_sWyQUaiqH_aXC75exW_9xezGlG7p27zJkr9DuFsVLMTcOla4XJqolpbswU4ztLnqYv7Cp0THoV2cnP55td9yQnLkL9WTZpkf4SMGiMKdgSqKhsdV30lHdOq03GlvU3Zhj_X0EOwDslTCN75B4bcWrrCI5D2qdZPrQtBMO3-BhwKT5J1Grn0F3fPCDMMHRCq8aEDCXA",
  "tok_rs512": "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.M6HCnyCsjIZ-WTpJ0-SBPUafCrBFtKt05w835_W0thFvIuI5NQo8Gr8_wRLz38aeHoBuJiX5RF8Xg0x4OtetvUif1N-VmbJphEZlQtI90PEjd2oyUFdsQmACgIwYosDe_UDg1OptyTa0CtdmFWZCPAyZK0-G0K2LWElKXMUgIL4zKYCpM6nBrmAwnIvzFw_UitawGcKhtLT5-SKidcDE4zjSOFmQFwGeVZlR82eHx0EfI3UIMwuLKeuA_4kuLISOGDl2FweyWUjqz-OZQ8kXYCVREGfn2yalvV5RkxnhCAPuM54hOHUit9X_Go32vBD6gWM-pa4By_8LGo3BpiaVaQ",
  "tok_ps256": "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.4bP1kpzdP5xXIvdqq7ANcco8JZSTh1RYCXrDts-tHzTmcC80KiUkZY_s1Iki8IwUIV5V-U3fGlXg80ZwOa9NhMpjas8yqZEdS24d34APpEAP8U2fX2a2pmyTOXC9ys0Txu4-T-7nCpG0kmHCO4jdr73CjmhLYBSNz77C675TSyTdHBWjSROqQCFR4qRCT1nkJc3fNiGo7A1ls4MpqynTwUBqZZoxl68KfC0CcVkfgwhQV34Z7sRqmb78v6r9bIswuavTw_SXopAw9dFO2Ujutnx1Ud4i-1Lr5TiXD8NdhAfLtwBJp4eSp7jTTR4ZKYV_Bd5YsQcJtR6I4EkaCamBSA",
  "tok_ps384": "eyJhbGciOiJQUzM4NCIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.o-4u73Xrti4xVnBOp6xn-blOfQ0moW9p7FLBdnDv2WPVpTubkW3C5JVcHw5vg8Ge4nbWTrf7t103c3UOkT9HSbr0MGRZ3nGlTwYULnSY9VLriWN7vN6vFTL6BW8M4uHuu3T0B0c1Abdm_2sRtDC9n6BaVmvwfzHV0HRjTgwcriLWkuITlLL6uQIjdOAlvmowWSQTHFVNhaGh_iDyuFyjPkmnr9D9otQTvfzhHo-xooKW9LZwnerI78qDIQAgR62Vxbg1HDetbd-AAYTZP6ukMKWyp6PJyW-5w5T8TruuyxaKiuTtfpmql2MvZoQEAjQuCsXBgn-oqeqHqqDYBw_81g",
  "tok_ps512": "eyJhbGciOiJQUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.L36myisxJE8DkAsgHa2wpHS3nXKba7hsKOtkJApJIhWYG_2IZ7OacxmMS9PctEQVp5ZFyKAKhb0cDHLHaEFB1plpAynXzraHJuPFc_xKF7K8hAzkGpA4SwTuoN5xXZIMAonRhRjTxN8PhKI996nC4P2TudPl8woYQsnc38yaKc3vE32KHvW7_ADWN7P9acKwfZ08EkDynGrCUWhBxLwiaCJG2hAuso9Hd0CrLbtI9dS5WmYtjn-lY2HghO08ED8p7hBgYZEvSP6EVTTcMz5Pv_KQljnVOm3UefWM_T3zpSasTng4P4Xsy5lusRhZlvqeuyMUVnnF0POra10sc2uY6A",
  "tok_es256": "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.fjPQqywI416ysnHias28KWoA3R6Qb0emJCRQ5ZpWcj7BhHZrQeVUR5uNnTYfE3d1B3FXxnphd_DPH5vegFylYw",
  "tok_es384": "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.ZRLxvt8cMeSW0eRDTa80EqzIvpwydf83xEB4w3b2biwdRV6tSmRf5Mt675xiZzbgiCBWfhoQb2_WF4kgTqHROmAqqijjgJMkcgozEUgAuVS1jq5xrSm4JsO3wpwldr45",
  "tok_es512": "eyJhbGciOiJFUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.ARpC6Y61UPL8WNxhyT6CE6k-Sx2oLCXMnpLCTNWhMVVeix01qU2mnez3juflajAInkXgaJXDDZTWzN5J42jlCt0MAHeMo6dUfAqoEY-SmLPzWu95AFkd-W2u1EmiJscAne28TikpN5zgD_2JOqiTQIErNSYX547XJPFSLxZkP_2Hm_nF",
  "tok_eddsa": "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci53YXJkZW4udGVzdCIsImF1ZCI6WyJhcGkiLCJvcHMiXSwic3ViIjoiWm_DqyDDhnLDuHNrw7hiaW5nIOmbqiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMDAwMDB9.2nOEaT1BfgXXCWfHaprXzpWDZKdhXdl4MuJyTXnGCKmcOytG1p0OhBrt8VzfO14wyUaEOdj-8vlUh2NOCcyNBA",
  "tok_rs256_kid1": "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJ4IiwiYXVkIjoiYXBpIn0.e8SqQyiE9QvioxLj232fp6wLMcqM8SRW1l6J4H-KLTz6460_APUFbh5XAFUQcWWYu8yQvBZxf67aOVHqaTjUOuhue61fWO7_lTuraW0kXhNO07oJvNMoY7yJ1ILlgVWY8LJMRHMfQGidIo8ul_HgRPs8lTfPZ3j7HfYVQ5-53MElru4NoUOUqmqyJQNeQ_uIMYv-xpGeXcxKTtwyCUny5Cgbnvx8_J_KjqXB3WrmlJvBsBvsmhyqYE6jQi8XXR8sMeSDzdWJoZX7J5KR2otiiuaPzqc1S7KXt3iSZvemHwN2R9ct1oVNiYIFkKlspKT7gTiPzczbLtt-opTkTiKJ-Q",
  "tok_rs256_kid2": "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsyIn0.eyJpc3MiOiJ4In0.7A1PzxkPtgTmLItwlrDgpvftwre1-kvECoAZudM1KARkHzydrhXPxxQK8vA-oURZsVFnsT4rHWIjWxCxOYHc8zqGHjPzZ6M7IyG007scvab5y5zhw5-s4R1XSMlM6sW9uitU6hBzipKbQibn_8-8qRDE9pRjV9UUMjXSUQ6HDJh1SC-ZBJlEj4YOyOt2xhV-qVzKSpds5CCkLIJix3Itgq0pj9isIrHIOLxr8sn6IQai1rBNV2w4oUfOibuW8hpGe33cxJHnY31bHFTdUavZDKC7-7_bQWQxRMoPHFYjjYQaOqEcDm1XwWwS96bW2RG0FADK05Rsq008i52H1JqQjg",
  "tok_hs256_str_aud": "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJhcGkiLCJpc3MiOiJpIiwiZXhwIjoxNzAwMDAwMDAwLjV9.zp8_VfofgRGPVhBr4dpryPFSbdBXnfmj8n0CtLPWFng",
  "tok_hs256_noclaims": "eyJhbGciOiJIUzI1NiJ9.eyJmb28iOiJiYXIifQ.yra-LYFoz8adA9bRmpPBDOS9W37k8dBTZWhMNMIVj1s",
  "tok_hs256_crit": "eyJhbGciOiJIUzI1NiIsImNyaXQiOlsienp6Il0sInp6eiI6MX0.eyJmb28iOiJiYXIifQ.DZACEsEwsixXv7Cz6fEykmYnYTBlE0EoGeaib4PlVwA",
  "tok_hs256_crit_known": "eyJhbGciOiJIUzI1NiIsImNyaXQiOlsia2lkIl0sImtpZCI6ImEifQ.eyJmb28iOiJiYXIifQ.N4btwzVXWjLYuXRGphauU_S1f1K6n2vC2D1bOF4rQhI",
  "tok_none": "eyJhbGciOiJub25lIn0.eyJhIjoxfQ.",
  "tok_jwe": "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.eyJhIjoxfQ.abc",
  "tok_nested": "eyJhbGciOiJIUzI1NiIsImN0eSI6IkpXVCJ9.ZXlKaGJHY2lPaUpJVXpJMU5pSjkuZXlKbWIyOGlPaUppWVhJaWZRLnlyYS1MWUZvejhhZEE5YlJtcFBCRE9TOVczN2s4ZEJUWldoTU5NSVZqMXM.jS68CIThXecQAmr5K7pEYIJ4I5VpmH7jorSmYoZ5sJ4",
  "leaf_der_b64": "MIIC9TCCApqgAwIBAgIKEjRWeJCrze8SNDAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUEwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6fvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8Ut/eHM43AgMBAAGjga4wgaswbAYDVR0RBGUwY4IPc3ZjLndhcmRlbi50ZXN0gg0qLndhcmRlbi50ZXN0gQ9vcHNAd2FyZGVuLnRlc3SHBAoAAAGHECABDbgAAAAAAAAAAAAAAAGGGHNwaWZmZTovL3dhcmRlbi50ZXN0L3N2YzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSQAwRgIhAMjFan1ttruy5T+K9hYT04/u1lkvKtGcXUR8/Xmc6zn3AiEAy6lT221Al9JuXP9dMy4P6GgQ8VvGpnBcbuUG7Mp1z5Q=",
  "int_cert": "-----BEGIN CERTIFICATE-----\nMIICFDCCAbqgAwIBAgIBCzAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUG\nA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3Qw\nIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMG8xITAfBgNVBAMMGFdh\ncmRlbiBUZXN0IEludGVybWVkaWF0ZTEPMA0GA1UEBwwGQmVybGluMQswCQYDVQQI\nDAJCRTEOMAwGA1UEEQwFMTAxMTUxDzANBgNVBAkMBlRlc3QgMTELMAkGA1UEBRMC\nNDIwdjAQBgcqhkjOPQIBBgUrgQQAIgNiAATDxLe0eJVLqK0jOUgEZcL3oINL9E6Z\nZcZEBHvSrc+VdbzZo/02k7KWR6CQPl6l14vlmCQJ6Sv9e78/San2rKdOYvw/1Vec\nUxCnNZZdpKZKAWKfdNW2RbJ47cwZrgn/l/OjVjBUMBIGA1UdEwEB/wQIMAYBAf8C\nAQAwHQYDVR0OBBYEFFQ/pnKTLku1wxVZjzsVRr1Gq6wyMB8GA1UdIwQYMBaAFLK/\nxXbZXtxysJtWxPBKLChwYeg9MAoGCCqGSM49BAMCA0gAMEUCIBoMf+hbKhdI7d3U\nELD804kOJka16Y6GbCa/E7DKmtTMAiEA1ttBr2vd+HzwLQAnHzOHUbltlGGG0bwp\n5UEoF/SSG04=\n-----END CERTIFICATE-----\n",
  "leaf2_cert": "-----BEGIN CERTIFICATE-----\nMIIDPDCCAsKgAwIBAgIBDDAKBggqhkjOPQQDAzBvMSEwHwYDVQQDDBhXYXJkZW4g\nVGVzdCBJbnRlcm1lZGlhdGUxDzANBgNVBAcMBkJlcmxpbjELMAkGA1UECAwCQkUx\nDjAMBgNVBBEMBTEwMTE1MQ8wDQYDVQQJDAZUZXN0IDExCzAJBgNVBAUTAjQyMCAX\nDTI1MDEwMTAwMDAwMFoYDzIxMjAxMDMwMDAwMDAwWjAdMRswGQYDVQQDDBJjbGll\nbnQud2FyZGVuLnRlc3QwgZswEAYHKoZIzj0CAQYFK4EEACMDgYYABADAzpH01EzR\nlHeJt6boqGDW/fA+m7X0/rSMjoZMS6knh+jx+DtLRAYz/o5fP1eskBxysv2raDzp\n5KtGRQXggSxr7wB2FSZ1MsVFCD7u3d6e6NKywvude4SO4AqtoXIEua2EQGCh+xJM\nY+bJl+OqMiC70+VDsrjEDCW7KF3RLE6hd79iQqOCAVowggFWMEkGA1UdEQRCMECC\nEmNsaWVudC53YXJkZW4udGVzdIYqaHR0cHM6Ly91c2VyQHdhcmRlbi50ZXN0Ojg0\nNDMvYS9iP3g9MSNmcmFnMBkGA1UdJQQSMBAGCCsGAQUFBwMCBgQqAwQFMB0GA1Ud\nDgQWBBStJEnv6CnvFRPYwHUR07eJJhajAzAfBgNVHSMEGDAWgBRUP6Zyky5LtcMV\nWY87FUa9RqusMjBcBggrBgEFBQcBAQRQME4wIwYIKwYBBQUHMAGGF2h0dHA6Ly9v\nY3NwLndhcmRlbi50ZXN0MCcGCCsGAQUFBzAChhtodHRwOi8vY2Eud2FyZGVuLnRl\nc3QvaS5jcnQwLQYDVR0fBCYwJDAioCCgHoYcaHR0cDovL2NybC53YXJkZW4udGVz\ndC9pLmNybDATBgNVHSAEDDAKMAgGBmeBDAECATAMBgMqA2MBAf8EAgUAMAoGCCqG\nSM49BAMDA2gAMGUCMH9iC+FGUxQUAsSsi0R+zLexkfUO6doc5AWIUb6AeTjYGgEy\nL4G/WoZOTsnHJhqW1QIxAK8DQQGLyF9m6Ht5D0pK5sZmeTm+jWUUWb9SMfuxz2lG\n44H7fgOq36IJIks39aZ3gg==\n-----END CERTIFICATE-----\n",
  "leaf3_cert": "-----BEGIN CERTIFICATE-----\nMIIB9jCCAXygAwIBAgIBDTAKBggqhkjOPQQDAzBvMSEwHwYDVQQDDBhXYXJkZW4g\nVGVzdCBJbnRlcm1lZGlhdGUxDzANBgNVBAcMBkJlcmxpbjELMAkGA1UECAwCQkUx\nDjAMBgNVBBEMBTEwMTE1MQ8wDQYDVQQJDAZUZXN0IDExCzAJBgNVBAUTAjQyMCAX\nDTI1MDEwMTAwMDAwMFoYDzIxMjAxMDMwMDAwMDAwWjAcMRowGAYDVQQDDBFwbGFp\nbi53YXJkZW4udGVzdDCBmzAQBgcqhkjOPQIBBgUrgQQAIwOBhgAEAMDOkfTUTNGU\nd4m3puioYNb98D6btfT+tIyOhkxLqSeH6PH4O0tEBjP+jl8/V6yQHHKy/atoPOnk\nq0ZFBeCBLGvvAHYVJnUyxUUIPu7d3p7o0rLC+517hI7gCq2hcgS5rYRAYKH7Ekxj\n5smX46oyILvT5UOyuMQMJbsoXdEsTqF3v2JCoxcwFTATBgNVHSUEDDAKBggrBgEF\nBQcDAjAKBggqhkjOPQQDAwNoADBlAjEAiZ8oe+JnpjY77dVwP4iugjHk6/yllWtj\nlP/E9TtTEaaQuZRJUDg5/xIFStW6/UNOAjABeaWJoEVncamsxJwUqar77mUYCUwY\nb9bPv7m0tR1/b2cHaCbC7LP2qDonpJ0uGUo=\n-----END CERTIFICATE-----\n",
  "nc_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIBQzCB9qADAgECAgEVMAUGAytlcDAgMR4wHAYDVQQDDBVXYXJkZW4gQ29uc3Ry\nYWluZWQgQ0EwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMCAxHjAc\nBgNVBAMMFVdhcmRlbiBDb25zdHJhaW5lZCBDQTAqMAUGAytlcAMhAAaQqY4pi+om\nkX8oKYMyBJ5ltLfuIe8I2QDS1qM+iU8oo1MwUTAPBgNVHRMBAf8EBTADAQH/MD4G\nA1UdHgEB/wQ0MDKgGzANggt3YXJkZW4udGVzdDAKhwgKAAAA/wAAAKETMBGCD2Jh\nZC53YXJkZW4udGVzdDAFBgMrZXADQQA9r9oB+MR01HgGP11E95IMj8/aikx8kcel\no2Gsr/uGk6uPzIA/14HOrNBHMYOBU3B1oj6nlG4fDHOy7hXUwYYD\n-----END CERTIFICATE-----\n",
  "nc_ok_cert": "-----BEGIN CERTIFICATE-----\nMIIBNzCB6qADAgECAgEWMAUGAytlcDAgMR4wHAYDVQQDDBVXYXJkZW4gQ29uc3Ry\nYWluZWQgQ0EwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMDEwMzAwMDAwMDBaMBoxGDAW\nBgNVBAMMD2FwaS53YXJkZW4udGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA\nBCNvhjEgI56ZbtJMjHjrs7T/6nIebgPBZkOHUWquetGWZ3KXMekJnn7u7EHODU/X\nIjcbeln8EQ1VR64VPNyrTv6jHjAcMBoGA1UdEQQTMBGCD2FwaS53YXJkZW4udGVz\ndDAFBgMrZXADQQDfN3M5z8DaJMeRbsqaksBv7+pW4647ckc8kxGahFOWRfrY1wU+\n7JMG4q1N36BDT/T6AJ0PCOkKzEhCm8FbG7oB\n-----END CERTIFICATE-----\n",
  "nc_out_cert": "-----BEGIN CERTIFICATE-----\nMIIBKzCB3qADAgECAgEXMAUGAytlcDAgMR4wHAYDVQQDDBVXYXJkZW4gQ29uc3Ry\nYWluZWQgQ0EwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMDEwMzAwMDAwMDBaMBQxEjAQ\nBgNVBAMMCWV2aWwudGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCNvhjEg\nI56ZbtJMjHjrs7T/6nIebgPBZkOHUWquetGWZ3KXMekJnn7u7EHODU/XIjcbeln8\nEQ1VR64VPNyrTv6jGDAWMBQGA1UdEQQNMAuCCWV2aWwudGVzdDAFBgMrZXADQQDJ\nzfFNl6jWhNFC6FzyVU+/GBh69ksxgJXkPGYpxxsb/dRNEIZV3vGRX1SVDDE3oUJa\n3gajr/3hgPgbMXC8F88G\n-----END CERTIFICATE-----\n",
  "nc_excl_cert": "-----BEGIN CERTIFICATE-----\nMIIBOzCB7qADAgECAgEYMAUGAytlcDAgMR4wHAYDVQQDDBVXYXJkZW4gQ29uc3Ry\nYWluZWQgQ0EwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMDEwMzAwMDAwMDBaMBwxGjAY\nBgNVBAMMEXguYmFkLndhcmRlbi50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD\nQgAEI2+GMSAjnplu0kyMeOuztP/qch5uA8FmQ4dRaq560ZZncpcx6Qmefu7sQc4N\nT9ciNxt6WfwRDVVHrhU83KtO/qMgMB4wHAYDVR0RBBUwE4IReC5iYWQud2FyZGVu\nLnRlc3QwBQYDK2VwA0EAta/H/XY8AiaSxE5/miSA9bF0Ro8PlQofX/cOgNDMSlaz\n9nU+1iPJJ0O1WnHsQ/lkzOrrZzvYoih+cBn2aFwDBg==\n-----END CERTIFICATE-----\n",
  "oct_jwk": {
   "kty": "oct",
   "k": "czNjcjN0LXRlc3Qtb25seQ"
  },
  "oct_jwk_text": "{\"k\":\"czNjcjN0LXRlc3Qtb25seQ\",\"kty\":\"oct\"}",
  "oct_jwks": "{\"keys\":[{\"kty\":\"oct\",\"k\":\"czNjcjN0LXRlc3Qtb25seQ\",\"alg\":\"HS256\"}]}",
  "tok_garbage_header": "!!.Yg.X7o2EsoUKpdiWJE0LGzAELOnyGjCHgs-UFHHoK9txUs",
  "tok_exp_string": "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOiJzb29uIn0.sXzrs3a684PbdoMcNtIBy49iQ2jstDT83dL2eF-nM1U",
  "tok_nbf_string": "eyJhbGciOiJIUzI1NiJ9.eyJuYmYiOiJzb29uIn0.EQ_KCFA2GumJmVtEEh_ItA6azRiSRKdY5VGdG_yPNmw",
  "tok_iss_number": "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOjV9.JxfF1ZH_W6nKgZwK9zZHB-M0oyV1cnypGFeyz6vpSvA",
  "tok_aud_number": "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOjV9.x-Uo5y2QIlBkGuJ2hlJN0vCPiVl_YdrCzCY7iiSmHcw",
  "tok_exp_big": "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjEwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMH0.nsenNg5ed0Nh-5QcfDrMMXHcpEu21qkrloHDXFkGVI0"
 }
}"#;

/// Helper functions the expressions use.
pub(super) const HELPERS: &str = r#"
tampered(tok) := concat(".", [split(tok, ".")[0], base64url.encode_no_pad(`{"sub":"admin"}`), split(tok, ".")[2]])
"#;

/// (name, Rego expression, OPA's answer as JSON; integers beyond 2^53 as
/// the text `#num:<digits>`).
pub(super) const CASES: &[(&str, &str, Option<&str>)] = &[
    (
        "md5_empty",
        r#"crypto.md5("")"#,
        Some(r#""d41d8cd98f00b204e9800998ecf8427e""#),
    ),
    (
        "sha1_empty",
        r#"crypto.sha1("")"#,
        Some(r#""da39a3ee5e6b4b0d3255bfef95601890afd80709""#),
    ),
    (
        "sha256_empty",
        r#"crypto.sha256("")"#,
        Some(r#""e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855""#),
    ),
    (
        "hmac_md5_empty",
        r#"crypto.hmac.md5("", "k€y")"#,
        Some(r#""04d50cd613e953956e64165d3b4c33ec""#),
    ),
    (
        "hmac_sha1_empty",
        r#"crypto.hmac.sha1("", "k€y")"#,
        Some(r#""78cb5032caf248761dea6659e31cb772d7aee0c7""#),
    ),
    (
        "hmac_sha256_empty",
        r#"crypto.hmac.sha256("", "k€y")"#,
        Some(r#""e5c39e0254dc79ea88462d529fabcc20237ff585b60d33e984faf2b9f4107937""#),
    ),
    (
        "hmac_sha512_empty",
        r#"crypto.hmac.sha512("", "k€y")"#,
        Some(
            r#""5f693984cdd73f86b9f57ca0c4b7142190d75185ac74049cd3ecf0941ef2f7af7be75c41e4e9b8dc9872bf8c0d2e8043f627dacf90295b4ee80bbc2323cd51aa""#,
        ),
    ),
    (
        "md5_abc",
        r#"crypto.md5("abc")"#,
        Some(r#""900150983cd24fb0d6963f7d28e17f72""#),
    ),
    (
        "sha1_abc",
        r#"crypto.sha1("abc")"#,
        Some(r#""a9993e364706816aba3e25717850c26c9cd0d89d""#),
    ),
    (
        "sha256_abc",
        r#"crypto.sha256("abc")"#,
        Some(r#""ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad""#),
    ),
    (
        "hmac_md5_abc",
        r#"crypto.hmac.md5("abc", "k€y")"#,
        Some(r#""9663789769697ac6d55b580c15ccbd71""#),
    ),
    (
        "hmac_sha1_abc",
        r#"crypto.hmac.sha1("abc", "k€y")"#,
        Some(r#""45e82ef7df20be3711c6c12c262676dbb2a74086""#),
    ),
    (
        "hmac_sha256_abc",
        r#"crypto.hmac.sha256("abc", "k€y")"#,
        Some(r#""1331add910965c91864e7ccb758a685de4d39c7579c3ed676e9e8374ec15105c""#),
    ),
    (
        "hmac_sha512_abc",
        r#"crypto.hmac.sha512("abc", "k€y")"#,
        Some(
            r#""9aa82fe038de8affca3b0c59691f7c335bc38a7fa0cb6785a9ca75162b995d8393578873034d084d73b81894f35f195ef79468b563ce83fa95e5ebe1ce8ce7c3""#,
        ),
    ),
    (
        "md5_utf8",
        r#"crypto.md5("Zoë 雪 ✓")"#,
        Some(r#""2a1492447796fdd8f6e451871b7e7026""#),
    ),
    (
        "sha1_utf8",
        r#"crypto.sha1("Zoë 雪 ✓")"#,
        Some(r#""19857a882ee15e19002a05d9cf80885057a19fb3""#),
    ),
    (
        "sha256_utf8",
        r#"crypto.sha256("Zoë 雪 ✓")"#,
        Some(r#""00844555e8f326113c3ef393261829b1e8ea5b7d03905accecbc729fd51d4e8a""#),
    ),
    (
        "hmac_md5_utf8",
        r#"crypto.hmac.md5("Zoë 雪 ✓", "k€y")"#,
        Some(r#""dea38354a31d0d09072a3e6777a14741""#),
    ),
    (
        "hmac_sha1_utf8",
        r#"crypto.hmac.sha1("Zoë 雪 ✓", "k€y")"#,
        Some(r#""a77e99c89fb6d1f0b5ac8cd2727a8e3d2aed290d""#),
    ),
    (
        "hmac_sha256_utf8",
        r#"crypto.hmac.sha256("Zoë 雪 ✓", "k€y")"#,
        Some(r#""562272c55dbeb1a25492e97ffb26ff0fc76a0e32b816db5357b9d6d675bd2289""#),
    ),
    (
        "hmac_sha512_utf8",
        r#"crypto.hmac.sha512("Zoë 雪 ✓", "k€y")"#,
        Some(
            r#""be9eb8e1a3794a53801ab7eba4e5a24c0eaad17980e65cd3d7c7e8b361ccf5db3568ef749a943d8b46370656b62d53ba1da54856b6298dcce58a8160a9671729""#,
        ),
    ),
    (
        "hmac_long_key",
        r#"crypto.hmac.sha256("msg", concat("", [x | some i in numbers.range(1, 200); x := "k"]))"#,
        Some(r#""e2adadca233bc31c6e6126c865132c3e945f9dedd44797a1e5acc3c037bc21fc""#),
    ),
    ("hmac_equal_same", r#"crypto.hmac.equal("abc", "abc")"#, Some(r#"true"#)),
    (
        "hmac_equal_diff",
        r#"crypto.hmac.equal("abc", "abd")"#,
        Some(r#"false"#),
    ),
    (
        "hmac_equal_len",
        r#"crypto.hmac.equal("abc", "abcd")"#,
        Some(r#"false"#),
    ),
    ("hmac_equal_empty", r#"crypto.hmac.equal("", "")"#, Some(r#"true"#)),
    (
        "decode_hs256",
        r#"io.jwt.decode(data.fixtures.tok_hs256)"#,
        Some(
            r#"[{"alg":"HS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"},"01df1af7c1a374cfd20f7e33c62028be83849fa66144332d300228a57a55344e"]"#,
        ),
    ),
    (
        "decode_rs256",
        r#"io.jwt.decode(data.fixtures.tok_rs256)"#,
        Some(
            r#"[{"alg":"RS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"},"ea8c628b9fb71592efc70f6fccbb7d35579784e70beccb94fe7532fc1c88bab475855fe2773720b697a2b259d494d79491705bdec47f5714e92acac2c681a0b6841dd453cbfe8f967d4edd8af522ee2eb85ab49eb3da1a2e6f6ca27a3e5b436acff8dc549e07b7af86a7cff5948f36f4d751dedc6778a5cdbe15b6107b7beda0c52c7ad5203a7d955924ed1e17ead46a838f6a2861c3514a33b1f38cb754fd6f78ffc23e7d1e40371ab9f9ddff58b9d7c410596424f7df902f757875a7123f8b755effb465ff20e316f7740e33dd1c7a85a9d1b91a5a78123553985f66cb1505697df8a7c93b1b4c9ca588342f71d6e5a4d44d31a9e4d269275848adc0ba6566"]"#,
        ),
    ),
    (
        "decode_es256",
        r#"io.jwt.decode(data.fixtures.tok_es256)"#,
        Some(
            r#"[{"alg":"ES256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"},"7e33d0ab2c08e35eb2b271e26acdbc296a00dd1e906f47a6242450e59a56723ec184766b41e554479b8d9d361f137775077157c67a6177f0cf1f9bde805ca563"]"#,
        ),
    ),
    (
        "decode_ps256",
        r#"io.jwt.decode(data.fixtures.tok_ps256)"#,
        Some(
            r#"[{"alg":"PS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"},"e1b3f5929cdd3f9c5722f76aabb00d71ca3c259493875458097ac3b6cfad1f34e6702f342a2524658fecd48922f08c14215e55f94ddf1a55e0f3467039af4d84ca636acf32a9911d4b6e1ddf800fa4400ff14d9f5f66b6a66c933970bdcacd13c6ee3e4feee70a91b49261c23b88ddafbdc28e684b60148dcfbec2ebbe534b24dd1c15a34913aa402151e2a4424f59e425cddf3621a8ec0d65b38329ab29d3c1406a659a3197af0a7c2d0271591f830850577e19eec46a99befcbfaafd6c8b30b9abd3c3f497a29030f5d14ed948eeb67c7551de22fb52ebe538970fc35d8407cbb70049a78792a7b8d34d1e1929857f05de58b10709b51e88e0491a09a98148"]"#,
        ),
    ),
    (
        "decode_eddsa",
        r#"io.jwt.decode(data.fixtures.tok_eddsa)"#,
        Some(
            r#"[{"alg":"EdDSA","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"},"da7384693d417e05d70967c76a9ad7ce958364a7615dd97832e2724d79c608a99c3b2b46d69d0e841aedf15cdf3b5e30c9468439d8fef2f95487634e09cc8d04"]"#,
        ),
    ),
    (
        "decode_nested",
        r#"io.jwt.decode(data.fixtures.tok_nested)"#,
        Some(r#"[{"alg":"HS256"},{"foo":"bar"},"cab6be2d8168cfc69d03d6d19a93c10ce4bd5b7ee4f1d05365684c34c2158f5b"]"#),
    ),
    (
        "decode_none",
        r#"io.jwt.decode(data.fixtures.tok_none)"#,
        Some(r#"[{"alg":"none"},{"a":1},""]"#),
    ),
    ("decode_jwe", r#"io.jwt.decode(data.fixtures.tok_jwe)"#, None),
    ("decode_no_dots", r#"io.jwt.decode("abc")"#, None),
    ("decode_two_parts", r#"io.jwt.decode("a.b")"#, None),
    ("decode_four_parts", r#"io.jwt.decode("a.b.c.d")"#, None),
    ("decode_bad_b64", r#"io.jwt.decode("%%%.e30.")"#, None),
    ("decode_bad_len", r#"io.jwt.decode("eyJhbGciOiJIUzI1NiJ9.e30.a")"#, None),
    (
        "decode_array_payload",
        r#"io.jwt.decode(concat(".", [base64url.encode_no_pad(`{"alg":"HS256"}`), base64url.encode_no_pad("[1,2]"), ""]))"#,
        None,
    ),
    (
        "decode_padded",
        r#"io.jwt.decode(concat(".", [base64url.encode(`{"alg":"HS256","x":"a"}`), base64url.encode(`{"a":"bc"}`), "AAAA"]))"#,
        Some(r#"[{"alg":"HS256","x":"a"},{"a":"bc"},"000000"]"#),
    ),
    (
        "decode_dup_keys",
        r#"io.jwt.decode(concat(".", [base64url.encode_no_pad(`{"alg":"HS256","a":1,"a":2}`), base64url.encode_no_pad(`{"b":1,"b":"z"}`), ""]))"#,
        Some(r#"[{"a":2,"alg":"HS256"},{"b":"z"},""]"#),
    ),
    (
        "decode_cty_nonstring",
        r#"io.jwt.decode(concat(".", [base64url.encode_no_pad(`{"alg":"HS256","cty":5}`), base64url.encode_no_pad(`{}`), ""]))"#,
        None,
    ),
    (
        "verify_hs256_ok",
        r#"io.jwt.verify_hs256(data.fixtures.tok_hs256, "s3cr3t-test-only")"#,
        Some(r#"true"#),
    ),
    (
        "verify_hs256_wrong",
        r#"io.jwt.verify_hs256(data.fixtures.tok_hs256, "wrong")"#,
        Some(r#"false"#),
    ),
    (
        "verify_hs384_ok",
        r#"io.jwt.verify_hs384(data.fixtures.tok_hs384, "s3cr3t-test-only")"#,
        Some(r#"true"#),
    ),
    (
        "verify_hs384_wrong",
        r#"io.jwt.verify_hs384(data.fixtures.tok_hs384, "wrong")"#,
        Some(r#"false"#),
    ),
    (
        "verify_hs512_ok",
        r#"io.jwt.verify_hs512(data.fixtures.tok_hs512, "s3cr3t-test-only")"#,
        Some(r#"true"#),
    ),
    (
        "verify_hs512_wrong",
        r#"io.jwt.verify_hs512(data.fixtures.tok_hs512, "wrong")"#,
        Some(r#"false"#),
    ),
    (
        "verify_hs256_other_alg_tok",
        r#"io.jwt.verify_hs256(data.fixtures.tok_hs384, "s3cr3t-test-only")"#,
        Some(r#"false"#),
    ),
    (
        "verify_hs256_tampered",
        r#"io.jwt.verify_hs256(tampered(data.fixtures.tok_hs256), "s3cr3t-test-only")"#,
        Some(r#"false"#),
    ),
    (
        "verify_hs256_malformed",
        r#"io.jwt.verify_hs256("a.b", "s3cr3t-test-only")"#,
        None,
    ),
    (
        "verify_hs256_bad_sig_b64",
        r#"io.jwt.verify_hs256("a.b.%%", "s3cr3t-test-only")"#,
        None,
    ),
    (
        "verify_hs256_garbage_header",
        r#"io.jwt.verify_hs256(data.fixtures.tok_garbage_header, "k")"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs256_pem",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs256_cert",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_cert)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs256_jwk",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_jwk_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs256_wrong_key",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa2_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs384_pem",
        r#"io.jwt.verify_rs384(data.fixtures.tok_rs384, data.fixtures.rsa_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs384_cert",
        r#"io.jwt.verify_rs384(data.fixtures.tok_rs384, data.fixtures.rsa_cert)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs384_jwk",
        r#"io.jwt.verify_rs384(data.fixtures.tok_rs384, data.fixtures.rsa_jwk_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs384_wrong_key",
        r#"io.jwt.verify_rs384(data.fixtures.tok_rs384, data.fixtures.rsa2_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs512_pem",
        r#"io.jwt.verify_rs512(data.fixtures.tok_rs512, data.fixtures.rsa_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs512_cert",
        r#"io.jwt.verify_rs512(data.fixtures.tok_rs512, data.fixtures.rsa_cert)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs512_jwk",
        r#"io.jwt.verify_rs512(data.fixtures.tok_rs512, data.fixtures.rsa_jwk_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs512_wrong_key",
        r#"io.jwt.verify_rs512(data.fixtures.tok_rs512, data.fixtures.rsa2_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_ps256_pem",
        r#"io.jwt.verify_ps256(data.fixtures.tok_ps256, data.fixtures.rsa_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_ps256_cert",
        r#"io.jwt.verify_ps256(data.fixtures.tok_ps256, data.fixtures.rsa_cert)"#,
        Some(r#"true"#),
    ),
    (
        "verify_ps256_jwk",
        r#"io.jwt.verify_ps256(data.fixtures.tok_ps256, data.fixtures.rsa_jwk_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_ps256_wrong_key",
        r#"io.jwt.verify_ps256(data.fixtures.tok_ps256, data.fixtures.rsa2_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_ps384_pem",
        r#"io.jwt.verify_ps384(data.fixtures.tok_ps384, data.fixtures.rsa_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_ps384_cert",
        r#"io.jwt.verify_ps384(data.fixtures.tok_ps384, data.fixtures.rsa_cert)"#,
        Some(r#"true"#),
    ),
    (
        "verify_ps384_jwk",
        r#"io.jwt.verify_ps384(data.fixtures.tok_ps384, data.fixtures.rsa_jwk_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_ps384_wrong_key",
        r#"io.jwt.verify_ps384(data.fixtures.tok_ps384, data.fixtures.rsa2_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_ps512_pem",
        r#"io.jwt.verify_ps512(data.fixtures.tok_ps512, data.fixtures.rsa_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_ps512_cert",
        r#"io.jwt.verify_ps512(data.fixtures.tok_ps512, data.fixtures.rsa_cert)"#,
        Some(r#"true"#),
    ),
    (
        "verify_ps512_jwk",
        r#"io.jwt.verify_ps512(data.fixtures.tok_ps512, data.fixtures.rsa_jwk_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_ps512_wrong_key",
        r#"io.jwt.verify_ps512(data.fixtures.tok_ps512, data.fixtures.rsa2_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs256_jwks_kid",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256_kid1, data.fixtures.rsa_jwks)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs256_jwks_kid_wrong",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256_kid2, data.fixtures.rsa_jwks)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs256_jwks_nokid",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_jwks)"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs256_jwks_alg_mismatch",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs384, data.fixtures.rsa_jwks)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs256_private_jwk",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_jwk_priv)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs256_with_ps_token",
        r#"io.jwt.verify_rs256(data.fixtures.tok_ps256, data.fixtures.rsa_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs384_with_rs256_token",
        r#"io.jwt.verify_rs384(data.fixtures.tok_rs256, data.fixtures.rsa_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs256_tampered",
        r#"io.jwt.verify_rs256(tampered(data.fixtures.tok_rs256), data.fixtures.rsa_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs256_ec_key",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.p256_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs256_bad_pem",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")"#,
        None,
    ),
    (
        "verify_rs256_pem_extra",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, concat("", [data.fixtures.rsa_pub, "x"]))"#,
        None,
    ),
    (
        "verify_rs256_pem_extra_nl",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, concat("", [data.fixtures.rsa_pub, "\n"]))"#,
        None,
    ),
    (
        "verify_rs256_pem_leading",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, concat("", ["junk\n", data.fixtures.rsa_pub]))"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs256_private_pem",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, data.fixtures.rsa_priv_pkcs8)"#,
        None,
    ),
    (
        "verify_rs256_not_json",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, "nope")"#,
        None,
    ),
    (
        "verify_rs256_empty_jwks",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, `{"keys":[]}`)"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs256_malformed",
        r#"io.jwt.verify_rs256("a.b.c", data.fixtures.rsa_pub)"#,
        None,
    ),
    (
        "verify_es256_pem",
        r#"io.jwt.verify_es256(data.fixtures.tok_es256, data.fixtures.p256_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_es256_jwk",
        r#"io.jwt.verify_es256(data.fixtures.tok_es256, data.fixtures.p256_jwk_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_es256_wrong_key",
        r#"io.jwt.verify_es256(data.fixtures.tok_es256, data.fixtures.p384_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_es384_pem",
        r#"io.jwt.verify_es384(data.fixtures.tok_es384, data.fixtures.p384_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_es384_jwk",
        r#"io.jwt.verify_es384(data.fixtures.tok_es384, data.fixtures.p384_jwk_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_es384_wrong_key",
        r#"io.jwt.verify_es384(data.fixtures.tok_es384, data.fixtures.p256_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_es512_pem",
        r#"io.jwt.verify_es512(data.fixtures.tok_es512, data.fixtures.p521_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_es512_jwk",
        r#"io.jwt.verify_es512(data.fixtures.tok_es512, data.fixtures.p521_jwk_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_es512_wrong_key",
        r#"io.jwt.verify_es512(data.fixtures.tok_es512, data.fixtures.p384_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_es256_ca_cert",
        r#"io.jwt.verify_es256(data.fixtures.tok_es256, data.fixtures.ca_cert)"#,
        Some(r#"true"#),
    ),
    (
        "verify_es256_tampered",
        r#"io.jwt.verify_es256(tampered(data.fixtures.tok_es256), data.fixtures.p256_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_es384_with_es256_token",
        r#"io.jwt.verify_es384(data.fixtures.tok_es256, data.fixtures.p256_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_eddsa_pem",
        r#"io.jwt.verify_eddsa(data.fixtures.tok_eddsa, data.fixtures.ed_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_eddsa_jwk",
        r#"io.jwt.verify_eddsa(data.fixtures.tok_eddsa, data.fixtures.ed_jwk_pub)"#,
        Some(r#"true"#),
    ),
    (
        "verify_eddsa_wrong",
        r#"io.jwt.verify_eddsa(data.fixtures.tok_eddsa, data.fixtures.rsa_pub)"#,
        Some(r#"false"#),
    ),
    (
        "verify_eddsa_tampered",
        r#"io.jwt.verify_eddsa(tampered(data.fixtures.tok_eddsa), data.fixtures.ed_pub)"#,
        Some(r#"false"#),
    ),
    (
        "dv_hs256_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"HS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_hs256_no_aud_constraint",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_hs256_wrong_aud",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "nope", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_hs256_iss_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "ops", "iss": "https://issuer.warden.test", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"HS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_hs256_iss_wrong",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "ops", "iss": "https://evil.test", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_hs256_expired",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 2000000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_hs256_just_before_exp",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1999999999000000000})"#,
        Some(
            r#"[true,{"alg":"HS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_hs256_not_yet",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1599999999000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_hs256_at_nbf",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1600000000000000000})"#,
        Some(
            r#"[true,{"alg":"HS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_hs256_wrong_secret",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "nope", "aud": "api", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_hs256_alg_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "alg": "HS256", "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"HS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_hs256_alg_mismatch",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "s3cr3t-test-only", "alg": "RS256", "aud": "api", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_hs256_float_exp_before",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256_str_aud, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1700000000000000000})"#,
        Some(r#"[true,{"alg":"HS256"},{"aud":"api","exp":1700000000.5,"iss":"i"}]"#),
    ),
    (
        "dv_hs256_float_exp_after",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256_str_aud, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1700000000600000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_hs256_no_claims",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256_noclaims, {"secret": "s3cr3t-test-only"})"#,
        Some(r#"[true,{"alg":"HS256"},{"foo":"bar"}]"#),
    ),
    (
        "dv_hs256_aud_required",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256_noclaims, {"secret": "s3cr3t-test-only", "aud": "api"})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_hs256_iss_required",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256_noclaims, {"secret": "s3cr3t-test-only", "iss": "x"})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_crit_unknown",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256_crit, {"secret": "s3cr3t-test-only"})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_crit_known",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256_crit_known, {"secret": "s3cr3t-test-only"})"#,
        Some(r#"[true,{"alg":"HS256","crit":["kid"],"kid":"a"},{"foo":"bar"}]"#),
    ),
    (
        "dv_nested",
        r#"io.jwt.decode_verify(data.fixtures.tok_nested, {"secret": "s3cr3t-test-only"})"#,
        Some(r#"[true,{"alg":"HS256"},{"foo":"bar"}]"#),
    ),
    (
        "dv_none_alg",
        r#"io.jwt.decode_verify(data.fixtures.tok_none, {"secret": "s3cr3t-test-only"})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_no_key",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"aud": "api"})"#,
        None,
    ),
    (
        "dv_two_keys",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "x", "cert": data.fixtures.rsa_pub})"#,
        None,
    ),
    (
        "dv_unknown_constraint",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "x", "foo": 1})"#,
        None,
    ),
    (
        "dv_negative_time",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "x", "time": -1})"#,
        None,
    ),
    (
        "dv_string_time",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"secret": "x", "time": "1"})"#,
        None,
    ),
    ("dv_malformed", r#"io.jwt.decode_verify("a.b", {"secret": "x"})"#, None),
    (
        "dv_bad_b64_header",
        r#"io.jwt.decode_verify("%%.e30.AA", {"secret": "x"})"#,
        None,
    ),
    (
        "dv_jwe",
        r#"io.jwt.decode_verify(data.fixtures.tok_jwe, {"secret": "x"})"#,
        None,
    ),
    (
        "dv_exp_string",
        r#"io.jwt.decode_verify(data.fixtures.tok_exp_string, {"secret": "k"})"#,
        None,
    ),
    (
        "dv_nbf_string",
        r#"io.jwt.decode_verify(data.fixtures.tok_nbf_string, {"secret": "k"})"#,
        None,
    ),
    (
        "dv_iss_number",
        r#"io.jwt.decode_verify(data.fixtures.tok_iss_number, {"secret": "k", "iss": "x"})"#,
        None,
    ),
    (
        "dv_aud_number",
        r#"io.jwt.decode_verify(data.fixtures.tok_aud_number, {"secret": "k"})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_exp_big",
        r#"io.jwt.decode_verify(data.fixtures.tok_exp_big, {"secret": "k", "time": 1700000000000000000})"#,
        Some(r##"[true,{"alg":"HS256"},{"exp":"#num:100000000000000000000000"}]"##),
    ),
    (
        "dv_rs256_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_rs256, {"cert": data.fixtures.rsa_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"RS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_rs384_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_rs384, {"cert": data.fixtures.rsa_cert, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"RS384","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_rs512_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_rs512, {"cert": data.fixtures.rsa_jwk_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"RS512","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_ps256_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_ps256, {"cert": data.fixtures.rsa_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"PS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_ps384_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_ps384, {"cert": data.fixtures.rsa_cert, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"PS384","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_ps512_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_ps512, {"cert": data.fixtures.rsa_jwk_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"PS512","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_es256_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_es256, {"cert": data.fixtures.p256_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"ES256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_es384_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_es384, {"cert": data.fixtures.p384_jwk_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"ES384","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_es512_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_es512, {"cert": data.fixtures.p521_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"ES512","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_eddsa_ok",
        r#"io.jwt.decode_verify(data.fixtures.tok_eddsa, {"cert": data.fixtures.ed_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"EdDSA","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_rs256_wrong_key",
        r#"io.jwt.decode_verify(data.fixtures.tok_rs256, {"cert": data.fixtures.rsa2_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_rs256_secret_for_rsa",
        r#"io.jwt.decode_verify(data.fixtures.tok_rs256, {"secret": "s3cr3t-test-only", "aud": "api", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_hs256_rsa_cert_for_hmac",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"cert": data.fixtures.rsa_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_rs256_jwks_kid",
        r#"io.jwt.decode_verify(data.fixtures.tok_rs256_kid1, {"cert": data.fixtures.rsa_jwks, "aud": "api"})"#,
        Some(r#"[true,{"alg":"RS256","kid":"k1"},{"aud":"api","iss":"x"}]"#),
    ),
    (
        "dv_rs256_jwks_kid_wrong",
        r#"io.jwt.decode_verify(data.fixtures.tok_rs256_kid2, {"cert": data.fixtures.rsa_jwks})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_rs256_private_jwk",
        r#"io.jwt.decode_verify(data.fixtures.tok_rs256, {"cert": data.fixtures.rsa_jwk_priv, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"RS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_es256_tampered",
        r#"io.jwt.decode_verify(tampered(data.fixtures.tok_es256), {"cert": data.fixtures.p256_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_rs256_tampered",
        r#"io.jwt.decode_verify(tampered(data.fixtures.tok_rs256), {"cert": data.fixtures.rsa_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "dv_oct_jwks_hs256",
        r#"io.jwt.decode_verify(data.fixtures.tok_hs256, {"cert": data.fixtures.oct_jwks, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"HS256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "dv_es256_as_es384_key",
        r#"io.jwt.decode_verify(data.fixtures.tok_es256, {"cert": data.fixtures.p384_pub, "aud": "api", "time": 1700000000000000000})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "sign_hs256",
        r#"io.jwt.encode_sign({"alg": "HS256", "typ": "JWT"}, {"sub": "Zoë 雪", "n": 1, "html": "<a&b>", "z": [true, null]}, data.fixtures.oct_jwk)"#,
        Some(
            r#""eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJodG1sIjoiXHUwMDNjYVx1MDAyNmJcdTAwM2UiLCJuIjoxLCJzdWIiOiJab8OrIOmbqiIsInoiOlt0cnVlLG51bGxdfQ.DQZcpZEp52glJ32NYbmGdNO1d3rMxXnUbfPteJAYH68""#,
        ),
    ),
    (
        "sign_hs384",
        r#"io.jwt.encode_sign({"alg": "HS384"}, {"a": "\u2028", "b": "\u0001\b\f\t"}, data.fixtures.oct_jwk)"#,
        Some(
            r#""eyJhbGciOiJIUzM4NCJ9.eyJhIjoiXHUyMDI4IiwiYiI6Ilx1MDAwMVxiXGZcdCJ9.4IbqAkifi48lyUmxhMrwxThr011pxwrxkwn1S06OIZFzmVwx8MowTcvUZwIqh5jg""#,
        ),
    ),
    (
        "sign_hs512_set",
        r#"io.jwt.encode_sign({"alg": "HS512", "kid": "k"}, {"s": {3, 1, 2}}, {"keys": [data.fixtures.oct_jwk]})"#,
        Some(
            r#""eyJhbGciOiJIUzUxMiIsImtpZCI6ImsifQ.eyJzIjpbMSwyLDNdfQ.kOOC0Szs-miksB4GOSDsJgZpmX7U4wc58pY2MCKKyW4sH4JDdITUqfjKxbDJjIlDcDT9LhXmYYMcruBMIS8DcQ""#,
        ),
    ),
    (
        "sign_rs256",
        r#"io.jwt.encode_sign({"alg": "RS256", "typ": "JWT"}, {"iss": "warden", "aud": ["a", "b"], "exp": 2000000000}, json.unmarshal(data.fixtures.rsa_jwk_priv))"#,
        Some(
            r#""eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOlsiYSIsImIiXSwiZXhwIjoyMDAwMDAwMDAwLCJpc3MiOiJ3YXJkZW4ifQ.7YaCujUPpLMvunbiorltE1MlrFS3mm8ZF0kNivIkrng3x6tgV4UawR8svBBKE1mWLogrt3838SSG5ibztZ5nMx-5y3Ury2BNkLaYynOuso3-3uNI5DIMbYyK-gOGJ_X-uCNK5g8aY5Q3ohxgT5kbV_-WFmNCecnpQfnBlF-R8cD928uCv2qztWDTaCnq3zi2KO4cstSsNu6rbfHastZgMTTLDmWZJFE964AxhGbveFCnX900TA6SKOR8KGcO0SP-K0HPDX9wCN_G4AgCzIFkzFOWW8otDCSVXjTjRgtkhEOrSLZ2OlGgRsT5U0sidCt1Dj64Des40PSNFxkXnCww4A""#,
        ),
    ),
    (
        "sign_rs384",
        r#"io.jwt.encode_sign({"alg": "RS384"}, {"x": 1.5}, json.unmarshal(data.fixtures.rsa_jwk_priv))"#,
        Some(
            r#""eyJhbGciOiJSUzM4NCJ9.eyJ4IjoxLjV9.34xXKauZVYHcONkNprGHHNIUPcrbKmyDB0c9BvNojmEPMJGTnfPsMyTyZ_Yvbf6bGUbnDa2XPdGk2kAjVw1DXrKMrrpGYYqT6A29teSVIhRwFwKL-e3CuTyuzqhAI5A6RrQqno0gXvMCBhdyyv9RSm2jqPJ9yzN3xkDt6mMjZJV7AaoBfBk9-5RPo2tua2pWqLqTpGESpkKCeezn4C5al0mRntsnb9nenEKLwdOG_uswhVuRdmnylY51-pQ03xrBirGVnmlQ0hF5RDZo2LPsaF5cfjd5dPkf4nkC0su-2CBk0gbKuvz-i0UxAawQhs4zLFDC6BrXeCwuBL63KTHpMg""#,
        ),
    ),
    (
        "sign_rs512",
        r#"io.jwt.encode_sign({"alg": "RS512"}, {}, json.unmarshal(data.fixtures.rsa_jwk_priv))"#,
        Some(
            r#""eyJhbGciOiJSUzUxMiJ9.e30.QxvK0xQPKKGW6cwdGSDfk57UzwF84xBRU-e6c2l3CksjVDruSJYo77b5qtD5trdHrDxJjEGNVvptFxhWw2VHXJyoDZqZrXZzaiHl4ctBzXzR58MJl8kVIEjdd3l9SMd_LTnJ9A7Uo2_GbTQUve25-cui_CuwFv0ocFvrl30CjLa7279cMy-l39E9W0B0KZDNQiWUEXQfxcqzyZTKl2MqjekEPgYZbMba-FkebkeDGlAK-B7prQU9W6faVEidRhUMvp_4uiDeRAPYO4dTaviiaJ4OSwrlJmvjo28Nhr0IjbRvTUJNBGw741y8X36pizWpulTbkvWBOpwDFPugCPSo8A""#,
        ),
    ),
    (
        "sign_eddsa",
        r#"io.jwt.encode_sign({"alg": "EdDSA"}, {"a": "b"}, json.unmarshal(data.fixtures.ed_jwk_priv))"#,
        Some(
            r#""eyJhbGciOiJFZERTQSJ9.eyJhIjoiYiJ9.edCf9F4-57Ds0GFOSPqfFJs6HDJfMIvWgaUlujOUh7rW4XghYP7ZcnwIDGJCocGXxm8bohp9z0V5PyVfVf0HCA""#,
        ),
    ),
    (
        "sign_raw_hs256",
        r#"io.jwt.encode_sign_raw(`{"typ":"JWT", "alg":"HS256"}`, `{"b": 2,  "a":1}`, data.fixtures.oct_jwk_text)"#,
        Some(
            r#""eyJ0eXAiOiJKV1QiLCAiYWxnIjoiSFMyNTYifQ.eyJiIjogMiwgICJhIjoxfQ.O5KNueZmplfSFssnmgNhDlTIQD0R4MflZ6U1GvRSZsg""#,
        ),
    ),
    (
        "sign_raw_rs256",
        r#"io.jwt.encode_sign_raw(`{"alg":"RS256"}`, `{"sub":"x"}`, data.fixtures.rsa_jwk_priv)"#,
        Some(
            r#""eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.xER-v8KaVyf5c4doVKPhqff9dUzfLWe5irWEDNqGbmMBx7j9OX6HuYnFPxjVAoGUsmrPcSk50j0do-VOL3G5kB2shATmxmKahrfwjUZRgCoSbfclivhvpmeMY6RsQB7VytlzT5l7JjLMkVckHH8BWJOUh_ssdtFkRi-4BPtNdsVGk7Y2NadgO2BJdvc8iU-UXG2yHflwvhejU1gcpg1olyoAnSRXFskasapEFfTBczi1I4rhiz1MYNOBxojb0n-CuvRlhCGxIV3NGpEMEwPk0Kmw2QHTW35hDRjlGM7xUyZUbyrk85JxMcTdaGDzkuA6asgO4tpPsJU0BoDveZtSTA""#,
        ),
    ),
    (
        "sign_raw_not_json_payload",
        r#"io.jwt.encode_sign_raw(`{"alg":"HS256"}`, `not json`, data.fixtures.oct_jwk_text)"#,
        None,
    ),
    (
        "sign_raw_not_json_payload_typ",
        r#"io.jwt.encode_sign_raw(`{"alg":"HS256","typ":"text"}`, `not json`, data.fixtures.oct_jwk_text)"#,
        Some(r#""eyJhbGciOiJIUzI1NiIsInR5cCI6InRleHQifQ.bm90IGpzb24.u1BdnpC2hovNmNmxfe2462hL_3xbL75ic_ObZUb-XPY""#),
    ),
    (
        "sign_unknown_alg",
        r#"io.jwt.encode_sign({"alg": "none"}, {}, data.fixtures.oct_jwk)"#,
        None,
    ),
    (
        "sign_no_alg",
        r#"io.jwt.encode_sign({}, {}, data.fixtures.oct_jwk)"#,
        None,
    ),
    (
        "sign_wrong_key_type",
        r#"io.jwt.encode_sign({"alg": "RS256"}, {}, data.fixtures.oct_jwk)"#,
        None,
    ),
    (
        "sign_public_key_only",
        r#"io.jwt.encode_sign({"alg": "RS256"}, {}, json.unmarshal(data.fixtures.rsa_jwk_pub))"#,
        None,
    ),
    (
        "sign_ps256_verifies",
        r#"io.jwt.verify_ps256(io.jwt.encode_sign({"alg": "PS256"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), data.fixtures.rsa_pub)"#,
        Some(r#"true"#),
    ),
    (
        "sign_ps256_decode_verify",
        r#"io.jwt.decode_verify(io.jwt.encode_sign({"alg": "PS256"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), {"cert": data.fixtures.rsa_pub})"#,
        Some(r#"[true,{"alg":"PS256"},{"a":1}]"#),
    ),
    (
        "sign_ps384_verifies",
        r#"io.jwt.verify_ps384(io.jwt.encode_sign({"alg": "PS384"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), data.fixtures.rsa_pub)"#,
        Some(r#"true"#),
    ),
    (
        "sign_ps384_decode_verify",
        r#"io.jwt.decode_verify(io.jwt.encode_sign({"alg": "PS384"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), {"cert": data.fixtures.rsa_pub})"#,
        Some(r#"[true,{"alg":"PS384"},{"a":1}]"#),
    ),
    (
        "sign_ps512_verifies",
        r#"io.jwt.verify_ps512(io.jwt.encode_sign({"alg": "PS512"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), data.fixtures.rsa_pub)"#,
        Some(r#"true"#),
    ),
    (
        "sign_ps512_decode_verify",
        r#"io.jwt.decode_verify(io.jwt.encode_sign({"alg": "PS512"}, {"a": 1}, json.unmarshal(data.fixtures.rsa_jwk_priv)), {"cert": data.fixtures.rsa_pub})"#,
        Some(r#"[true,{"alg":"PS512"},{"a":1}]"#),
    ),
    (
        "sign_es256_verifies",
        r#"io.jwt.verify_es256(io.jwt.encode_sign({"alg": "ES256"}, {"a": 1}, json.unmarshal(data.fixtures.p256_jwk_priv)), data.fixtures.p256_pub)"#,
        Some(r#"true"#),
    ),
    (
        "sign_es256_decode_verify",
        r#"io.jwt.decode_verify(io.jwt.encode_sign({"alg": "ES256"}, {"a": 1}, json.unmarshal(data.fixtures.p256_jwk_priv)), {"cert": data.fixtures.p256_pub})"#,
        Some(r#"[true,{"alg":"ES256"},{"a":1}]"#),
    ),
    (
        "sign_es384_verifies",
        r#"io.jwt.verify_es384(io.jwt.encode_sign({"alg": "ES384"}, {"a": 1}, json.unmarshal(data.fixtures.p384_jwk_priv)), data.fixtures.p384_pub)"#,
        Some(r#"true"#),
    ),
    (
        "sign_es384_decode_verify",
        r#"io.jwt.decode_verify(io.jwt.encode_sign({"alg": "ES384"}, {"a": 1}, json.unmarshal(data.fixtures.p384_jwk_priv)), {"cert": data.fixtures.p384_pub})"#,
        Some(r#"[true,{"alg":"ES384"},{"a":1}]"#),
    ),
    (
        "sign_es512_verifies",
        r#"io.jwt.verify_es512(io.jwt.encode_sign({"alg": "ES512"}, {"a": 1}, json.unmarshal(data.fixtures.p521_jwk_priv)), data.fixtures.p521_pub)"#,
        Some(r#"true"#),
    ),
    (
        "sign_es512_decode_verify",
        r#"io.jwt.decode_verify(io.jwt.encode_sign({"alg": "ES512"}, {"a": 1}, json.unmarshal(data.fixtures.p521_jwk_priv)), {"cert": data.fixtures.p521_pub})"#,
        Some(r#"[true,{"alg":"ES512"},{"a":1}]"#),
    ),
    (
        "sign_roundtrip_hs",
        r#"io.jwt.decode_verify(io.jwt.encode_sign({"alg": "HS256"}, {"iss": "me", "aud": "you", "exp": 2000000000}, data.fixtures.oct_jwk), {"secret": "s3cr3t-test-only", "iss": "me", "aud": "you", "time": 1700000000000000000})"#,
        Some(r#"[true,{"alg":"HS256"},{"aud":"you","exp":2000000000,"iss":"me"}]"#),
    ),
    (
        "x509_parse_leaf",
        r#"crypto.x509.parse_certificates(data.fixtures.leaf_cert)"#,
        Some(
            r##"[{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":["svc.warden.test","*.warden.test"],"EmailAddresses":["ops@warden.test"],"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":[1,2],"Extensions":[{"Critical":false,"Id":[2,5,29,17],"Value":"MGOCD3N2Yy53YXJkZW4udGVzdIINKi53YXJkZW4udGVzdIEPb3BzQHdhcmRlbi50ZXN0hwQKAAABhxAgAQ24AAAAAAAAAAAAAAABhhhzcGlmZmU6Ly93YXJkZW4udGVzdC9zdmM="},{"Critical":true,"Id":[2,5,29,19],"Value":"MAA="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIFoA=="},{"Critical":false,"Id":[2,5,29,37],"Value":"MBQGCCsGAQUFBwMBBggrBgEFBQcDAg=="}],"ExtraExtensions":null,"IPAddresses":["10.0.0.1","2001:db8::1"],"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":5,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799"},"PublicKeyAlgorithm":1,"Raw":"MIIC9TCCApqgAwIBAgIKEjRWeJCrze8SNDAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUEwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6fvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8Ut/eHM43AgMBAAGjga4wgaswbAYDVR0RBGUwY4IPc3ZjLndhcmRlbi50ZXN0gg0qLndhcmRlbi50ZXN0gQ9vcHNAd2FyZGVuLnRlc3SHBAoAAAGHECABDbgAAAAAAAAAAAAAAAGGGHNwaWZmZTovL3dhcmRlbi50ZXN0L3N2YzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSQAwRgIhAMjFan1ttruy5T+K9hYT04/u1lkvKtGcXUR8/Xmc6zn3AiEAy6lT221Al9JuXP9dMy4P6GgQ8VvGpnBcbuUG7Mp1z5Q=","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUE=","RawSubjectPublicKeyInfo":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQAB","RawTBSCertificate":"MIICmqADAgECAgoSNFZ4kKvN7xI0MAoGCCqGSM49BAMCMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowPzEYMBYGA1UEAwwPc3ZjLndhcmRlbi50ZXN0MRYwFAYDVQQKDA1Xw6RyZGVuIMOcbml0MQswCQYDVQQLDAJRQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAO6k3p+8YmDSLj7Kf7VT7MFfxbCN1EEnblw93kFOfwJksBMsA4enkrfYrfjJDrx/6YshOZn/0Ks5wR2RDGtGhfezxrdOAbGT5bFNldMvSPBgx6T6SBtSCqKl31nP5WFQ26PvQ5yOJtmc172V2oRS5AePT4mhlkNDgISeFtHxDzKOMdc3CdbYzO6lZb9zC0GpeQivlpXTTGaRjNEhi0XcIXJWm81yKYmpmnAY+Ou6mfiI85eNr7ElOGq9iRdlIMtKgmk3y8wNQYh5x3g9zDhAPyf3AfQSBFTFkH2w6SXOxennHOk+MTvnNwyrThEqvuAWso2UpNT6YgRr/LxS394czjcCAwEAAaOBrjCBqzBsBgNVHREEZTBjgg9zdmMud2FyZGVuLnRlc3SCDSoud2FyZGVuLnRlc3SBD29wc0B3YXJkZW4udGVzdIcECgAAAYcQIAENuAAAAAAAAAAAAAAAAYYYc3BpZmZlOi8vd2FyZGVuLnRlc3Qvc3ZjMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgWgMB0GA1UdJQQWMBQGCCsGAQUFBwMBBggrBgEFBQcDAg==","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":"#num:85968058272638546416180","Signature":"MEYCIQDIxWp9bba7suU/ivYWE9OP7tZZLyrRnF1EfP15nOs59wIhAMupU9ttQJfSblz/XTMuD+hoEPFbxqZwXG7lBuzKdc+U","SignatureAlgorithm":10,"Subject":{"CommonName":"svc.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"svc.warden.test"},{"Type":[2,5,4,10],"Value":"Wärden Ünit"},{"Type":[2,5,4,11],"Value":"QA"}],"Organization":["Wärden Ünit"],"OrganizationalUnit":["QA"],"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":["spiffe://warden.test/svc"],"URIs":[{"ForceQuery":false,"Fragment":"","Host":"warden.test","OmitHost":false,"Opaque":"","Path":"/svc","RawFragment":"","RawPath":"","RawQuery":"","Scheme":"spiffe","User":null}],"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]"##,
        ),
    ),
    (
        "x509_parse_ca",
        r#"crypto.x509.parse_certificates(data.fixtures.ca_cert)"#,
        Some(
            r##"[{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":[{"Critical":true,"Id":[2,5,29,19],"Value":"MAMBAf8="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIBhg=="}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":true,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":97,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2124-12-08T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"},"PublicKeyAlgorithm":3,"Raw":"MIIBmDCCAT2gAwIBAgICEAAwCgYIKoZIzj0EAwIwQTELMAkGA1UEBhMCREUxFzAVBgNVBAoMDldhcmRlbiBUZXN0IENBMRkwFwYDVQQDDBBXYXJkZW4gVGVzdCBSb290MCAXDTI1MDEwMTAwMDAwMFoYDzIxMjQxMjA4MDAwMDAwWjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQjb4YxICOemW7STIx467O0/+pyHm4DwWZDh1FqrnrRlmdylzHpCZ5+7uxBzg1P1yI3G3pZ/BENVUeuFTzcq07+oyMwITAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAKBggqhkjOPQQDAgNJADBGAiEAq23XPPvbZ8fYhpUj3zmXXxccxR5xchI3xt6mslF1kmMCIQChdeVioTjIKihmU5SbIIORkqG/5xhQ4HYIlj8eRShXkQ==","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubjectPublicKeyInfo":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI2+GMSAjnplu0kyMeOuztP/qch5uA8FmQ4dRaq560ZZncpcx6Qmefu7sQc4NT9ciNxt6WfwRDVVHrhU83KtO/g==","RawTBSCertificate":"MIIBPaADAgECAgIQADAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyNDEyMDgwMDAwMDBaMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCNvhjEgI56ZbtJMjHjrs7T/6nIebgPBZkOHUWquetGWZ3KXMekJnn7u7EHODU/XIjcbeln8EQ1VR64VPNyrTv6jIzAhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGG","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":4096,"Signature":"MEYCIQCrbdc8+9tnx9iGlSPfOZdfFxzFHnFyEjfG3qayUXWSYwIhAKF15WKhOMgqKGZTlJsgg5GSob/nGFDgdgiWPx5FKFeR","SignatureAlgorithm":10,"Subject":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]"##,
        ),
    ),
    (
        "x509_parse_rsa_self",
        r#"crypto.x509.parse_certificates(data.fixtures.rsa_cert)"#,
        Some(
            r##"[{"AuthorityKeyId":null,"BasicConstraintsValid":false,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":null,"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"rsa-self","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"rsa-self"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":0,"MaxPathLen":0,"MaxPathLenZero":false,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799"},"PublicKeyAlgorithm":1,"Raw":"MIICoTCCAYmgAwIBAgIBBzANBgkqhkiG9w0BAQsFADATMREwDwYDVQQDDAhyc2Etc2VsZjAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowEzERMA8GA1UEAwwIcnNhLXNlbGYwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6fvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8Ut/eHM43AgMBAAEwDQYJKoZIhvcNAQELBQADggEBADL7ECljHJwx49mkrdt7S5qN5/BBE9aTRLbUXCAusEc3Ia/CT8Dt+WrRbRjiDAF290kR94x30J+rRFK31S+iAITVIVASqPxX+VUUsjwYkpMmLAlYKCGggeCabVoRKNMxf/J9Mt19kwiWotyK/m0QNG/9yD/0g8mXxXX6sqPiZGhFw+uYxrQ8TuBRdOJxSPFm+pgaPPn+1I274YCXtuCUW9CPX5SJIeVxMUWaL8zzxs3Y4aYRY76s9ptWNvzl4JMhe+5DO/qKuzT4EKxwL9dIz6FDMERyHI6J/N2E7809DT5der3r3yuPRZYpv5yGJRYSZyExATLFZp4S1de6pvm5qog=","RawIssuer":"MBMxETAPBgNVBAMMCHJzYS1zZWxm","RawSubject":"MBMxETAPBgNVBAMMCHJzYS1zZWxm","RawSubjectPublicKeyInfo":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQAB","RawTBSCertificate":"MIIBiaADAgECAgEHMA0GCSqGSIb3DQEBCwUAMBMxETAPBgNVBAMMCHJzYS1zZWxmMCAXDTI1MDEwMTAwMDAwMFoYDzIxMjMwNzI3MDAwMDAwWjATMREwDwYDVQQDDAhyc2Etc2VsZjCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAO6k3p+8YmDSLj7Kf7VT7MFfxbCN1EEnblw93kFOfwJksBMsA4enkrfYrfjJDrx/6YshOZn/0Ks5wR2RDGtGhfezxrdOAbGT5bFNldMvSPBgx6T6SBtSCqKl31nP5WFQ26PvQ5yOJtmc172V2oRS5AePT4mhlkNDgISeFtHxDzKOMdc3CdbYzO6lZb9zC0GpeQivlpXTTGaRjNEhi0XcIXJWm81yKYmpmnAY+Ou6mfiI85eNr7ElOGq9iRdlIMtKgmk3y8wNQYh5x3g9zDhAPyf3AfQSBFTFkH2w6SXOxennHOk+MTvnNwyrThEqvuAWso2UpNT6YgRr/LxS394czjcCAwEAAQ==","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":7,"Signature":"MvsQKWMcnDHj2aSt23tLmo3n8EET1pNEttRcIC6wRzchr8JPwO35atFtGOIMAXb3SRH3jHfQn6tEUrfVL6IAhNUhUBKo/Ff5VRSyPBiSkyYsCVgoIaCB4JptWhEo0zF/8n0y3X2TCJai3Ir+bRA0b/3IP/SDyZfFdfqyo+JkaEXD65jGtDxO4FF04nFI8Wb6mBo8+f7UjbvhgJe24JRb0I9flIkh5XExRZovzPPGzdjhphFjvqz2m1Y2/OXgkyF77kM7+oq7NPgQrHAv10jPoUMwRHIcjon83YTvzT0NPl16vevfK49Flim/nIYlFhJnITEBMsVmnhLV17qm+bmqiA==","SignatureAlgorithm":4,"Subject":{"CommonName":"rsa-self","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"rsa-self"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]"##,
        ),
    ),
    (
        "x509_parse_two",
        r#"crypto.x509.parse_certificates(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]))"#,
        Some(
            r##"[{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":[{"Critical":true,"Id":[2,5,29,19],"Value":"MAMBAf8="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIBhg=="}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":true,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":97,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2124-12-08T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"},"PublicKeyAlgorithm":3,"Raw":"MIIBmDCCAT2gAwIBAgICEAAwCgYIKoZIzj0EAwIwQTELMAkGA1UEBhMCREUxFzAVBgNVBAoMDldhcmRlbiBUZXN0IENBMRkwFwYDVQQDDBBXYXJkZW4gVGVzdCBSb290MCAXDTI1MDEwMTAwMDAwMFoYDzIxMjQxMjA4MDAwMDAwWjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQjb4YxICOemW7STIx467O0/+pyHm4DwWZDh1FqrnrRlmdylzHpCZ5+7uxBzg1P1yI3G3pZ/BENVUeuFTzcq07+oyMwITAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAKBggqhkjOPQQDAgNJADBGAiEAq23XPPvbZ8fYhpUj3zmXXxccxR5xchI3xt6mslF1kmMCIQChdeVioTjIKihmU5SbIIORkqG/5xhQ4HYIlj8eRShXkQ==","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubjectPublicKeyInfo":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI2+GMSAjnplu0kyMeOuztP/qch5uA8FmQ4dRaq560ZZncpcx6Qmefu7sQc4NT9ciNxt6WfwRDVVHrhU83KtO/g==","RawTBSCertificate":"MIIBPaADAgECAgIQADAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyNDEyMDgwMDAwMDBaMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCNvhjEgI56ZbtJMjHjrs7T/6nIebgPBZkOHUWquetGWZ3KXMekJnn7u7EHODU/XIjcbeln8EQ1VR64VPNyrTv6jIzAhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGG","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":4096,"Signature":"MEYCIQCrbdc8+9tnx9iGlSPfOZdfFxzFHnFyEjfG3qayUXWSYwIhAKF15WKhOMgqKGZTlJsgg5GSob/nGFDgdgiWPx5FKFeR","SignatureAlgorithm":10,"Subject":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3},{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":["svc.warden.test","*.warden.test"],"EmailAddresses":["ops@warden.test"],"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":[1,2],"Extensions":[{"Critical":false,"Id":[2,5,29,17],"Value":"MGOCD3N2Yy53YXJkZW4udGVzdIINKi53YXJkZW4udGVzdIEPb3BzQHdhcmRlbi50ZXN0hwQKAAABhxAgAQ24AAAAAAAAAAAAAAABhhhzcGlmZmU6Ly93YXJkZW4udGVzdC9zdmM="},{"Critical":true,"Id":[2,5,29,19],"Value":"MAA="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIFoA=="},{"Critical":false,"Id":[2,5,29,37],"Value":"MBQGCCsGAQUFBwMBBggrBgEFBQcDAg=="}],"ExtraExtensions":null,"IPAddresses":["10.0.0.1","2001:db8::1"],"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":5,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799"},"PublicKeyAlgorithm":1,"Raw":"MIIC9TCCApqgAwIBAgIKEjRWeJCrze8SNDAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUEwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6fvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8Ut/eHM43AgMBAAGjga4wgaswbAYDVR0RBGUwY4IPc3ZjLndhcmRlbi50ZXN0gg0qLndhcmRlbi50ZXN0gQ9vcHNAd2FyZGVuLnRlc3SHBAoAAAGHECABDbgAAAAAAAAAAAAAAAGGGHNwaWZmZTovL3dhcmRlbi50ZXN0L3N2YzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSQAwRgIhAMjFan1ttruy5T+K9hYT04/u1lkvKtGcXUR8/Xmc6zn3AiEAy6lT221Al9JuXP9dMy4P6GgQ8VvGpnBcbuUG7Mp1z5Q=","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUE=","RawSubjectPublicKeyInfo":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQAB","RawTBSCertificate":"MIICmqADAgECAgoSNFZ4kKvN7xI0MAoGCCqGSM49BAMCMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowPzEYMBYGA1UEAwwPc3ZjLndhcmRlbi50ZXN0MRYwFAYDVQQKDA1Xw6RyZGVuIMOcbml0MQswCQYDVQQLDAJRQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAO6k3p+8YmDSLj7Kf7VT7MFfxbCN1EEnblw93kFOfwJksBMsA4enkrfYrfjJDrx/6YshOZn/0Ks5wR2RDGtGhfezxrdOAbGT5bFNldMvSPBgx6T6SBtSCqKl31nP5WFQ26PvQ5yOJtmc172V2oRS5AePT4mhlkNDgISeFtHxDzKOMdc3CdbYzO6lZb9zC0GpeQivlpXTTGaRjNEhi0XcIXJWm81yKYmpmnAY+Ou6mfiI85eNr7ElOGq9iRdlIMtKgmk3y8wNQYh5x3g9zDhAPyf3AfQSBFTFkH2w6SXOxennHOk+MTvnNwyrThEqvuAWso2UpNT6YgRr/LxS394czjcCAwEAAaOBrjCBqzBsBgNVHREEZTBjgg9zdmMud2FyZGVuLnRlc3SCDSoud2FyZGVuLnRlc3SBD29wc0B3YXJkZW4udGVzdIcECgAAAYcQIAENuAAAAAAAAAAAAAAAAYYYc3BpZmZlOi8vd2FyZGVuLnRlc3Qvc3ZjMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgWgMB0GA1UdJQQWMBQGCCsGAQUFBwMBBggrBgEFBQcDAg==","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":"#num:85968058272638546416180","Signature":"MEYCIQDIxWp9bba7suU/ivYWE9OP7tZZLyrRnF1EfP15nOs59wIhAMupU9ttQJfSblz/XTMuD+hoEPFbxqZwXG7lBuzKdc+U","SignatureAlgorithm":10,"Subject":{"CommonName":"svc.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"svc.warden.test"},{"Type":[2,5,4,10],"Value":"Wärden Ünit"},{"Type":[2,5,4,11],"Value":"QA"}],"Organization":["Wärden Ünit"],"OrganizationalUnit":["QA"],"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":["spiffe://warden.test/svc"],"URIs":[{"ForceQuery":false,"Fragment":"","Host":"warden.test","OmitHost":false,"Opaque":"","Path":"/svc","RawFragment":"","RawPath":"","RawQuery":"","Scheme":"spiffe","User":null}],"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]"##,
        ),
    ),
    (
        "x509_parse_b64_pem",
        r#"crypto.x509.parse_certificates(base64.encode(data.fixtures.leaf_cert))"#,
        Some(
            r##"[{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":["svc.warden.test","*.warden.test"],"EmailAddresses":["ops@warden.test"],"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":[1,2],"Extensions":[{"Critical":false,"Id":[2,5,29,17],"Value":"MGOCD3N2Yy53YXJkZW4udGVzdIINKi53YXJkZW4udGVzdIEPb3BzQHdhcmRlbi50ZXN0hwQKAAABhxAgAQ24AAAAAAAAAAAAAAABhhhzcGlmZmU6Ly93YXJkZW4udGVzdC9zdmM="},{"Critical":true,"Id":[2,5,29,19],"Value":"MAA="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIFoA=="},{"Critical":false,"Id":[2,5,29,37],"Value":"MBQGCCsGAQUFBwMBBggrBgEFBQcDAg=="}],"ExtraExtensions":null,"IPAddresses":["10.0.0.1","2001:db8::1"],"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":5,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799"},"PublicKeyAlgorithm":1,"Raw":"MIIC9TCCApqgAwIBAgIKEjRWeJCrze8SNDAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUEwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6fvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8Ut/eHM43AgMBAAGjga4wgaswbAYDVR0RBGUwY4IPc3ZjLndhcmRlbi50ZXN0gg0qLndhcmRlbi50ZXN0gQ9vcHNAd2FyZGVuLnRlc3SHBAoAAAGHECABDbgAAAAAAAAAAAAAAAGGGHNwaWZmZTovL3dhcmRlbi50ZXN0L3N2YzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSQAwRgIhAMjFan1ttruy5T+K9hYT04/u1lkvKtGcXUR8/Xmc6zn3AiEAy6lT221Al9JuXP9dMy4P6GgQ8VvGpnBcbuUG7Mp1z5Q=","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUE=","RawSubjectPublicKeyInfo":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQAB","RawTBSCertificate":"MIICmqADAgECAgoSNFZ4kKvN7xI0MAoGCCqGSM49BAMCMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowPzEYMBYGA1UEAwwPc3ZjLndhcmRlbi50ZXN0MRYwFAYDVQQKDA1Xw6RyZGVuIMOcbml0MQswCQYDVQQLDAJRQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAO6k3p+8YmDSLj7Kf7VT7MFfxbCN1EEnblw93kFOfwJksBMsA4enkrfYrfjJDrx/6YshOZn/0Ks5wR2RDGtGhfezxrdOAbGT5bFNldMvSPBgx6T6SBtSCqKl31nP5WFQ26PvQ5yOJtmc172V2oRS5AePT4mhlkNDgISeFtHxDzKOMdc3CdbYzO6lZb9zC0GpeQivlpXTTGaRjNEhi0XcIXJWm81yKYmpmnAY+Ou6mfiI85eNr7ElOGq9iRdlIMtKgmk3y8wNQYh5x3g9zDhAPyf3AfQSBFTFkH2w6SXOxennHOk+MTvnNwyrThEqvuAWso2UpNT6YgRr/LxS394czjcCAwEAAaOBrjCBqzBsBgNVHREEZTBjgg9zdmMud2FyZGVuLnRlc3SCDSoud2FyZGVuLnRlc3SBD29wc0B3YXJkZW4udGVzdIcECgAAAYcQIAENuAAAAAAAAAAAAAAAAYYYc3BpZmZlOi8vd2FyZGVuLnRlc3Qvc3ZjMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgWgMB0GA1UdJQQWMBQGCCsGAQUFBwMBBggrBgEFBQcDAg==","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":"#num:85968058272638546416180","Signature":"MEYCIQDIxWp9bba7suU/ivYWE9OP7tZZLyrRnF1EfP15nOs59wIhAMupU9ttQJfSblz/XTMuD+hoEPFbxqZwXG7lBuzKdc+U","SignatureAlgorithm":10,"Subject":{"CommonName":"svc.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"svc.warden.test"},{"Type":[2,5,4,10],"Value":"Wärden Ünit"},{"Type":[2,5,4,11],"Value":"QA"}],"Organization":["Wärden Ünit"],"OrganizationalUnit":["QA"],"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":["spiffe://warden.test/svc"],"URIs":[{"ForceQuery":false,"Fragment":"","Host":"warden.test","OmitHost":false,"Opaque":"","Path":"/svc","RawFragment":"","RawPath":"","RawQuery":"","Scheme":"spiffe","User":null}],"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]"##,
        ),
    ),
    (
        "x509_parse_b64_der",
        r#"crypto.x509.parse_certificates(data.fixtures.leaf_der_b64)"#,
        Some(
            r##"[{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":["svc.warden.test","*.warden.test"],"EmailAddresses":["ops@warden.test"],"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":[1,2],"Extensions":[{"Critical":false,"Id":[2,5,29,17],"Value":"MGOCD3N2Yy53YXJkZW4udGVzdIINKi53YXJkZW4udGVzdIEPb3BzQHdhcmRlbi50ZXN0hwQKAAABhxAgAQ24AAAAAAAAAAAAAAABhhhzcGlmZmU6Ly93YXJkZW4udGVzdC9zdmM="},{"Critical":true,"Id":[2,5,29,19],"Value":"MAA="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIFoA=="},{"Critical":false,"Id":[2,5,29,37],"Value":"MBQGCCsGAQUFBwMBBggrBgEFBQcDAg=="}],"ExtraExtensions":null,"IPAddresses":["10.0.0.1","2001:db8::1"],"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":5,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799"},"PublicKeyAlgorithm":1,"Raw":"MIIC9TCCApqgAwIBAgIKEjRWeJCrze8SNDAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUEwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6fvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8Ut/eHM43AgMBAAGjga4wgaswbAYDVR0RBGUwY4IPc3ZjLndhcmRlbi50ZXN0gg0qLndhcmRlbi50ZXN0gQ9vcHNAd2FyZGVuLnRlc3SHBAoAAAGHECABDbgAAAAAAAAAAAAAAAGGGHNwaWZmZTovL3dhcmRlbi50ZXN0L3N2YzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSQAwRgIhAMjFan1ttruy5T+K9hYT04/u1lkvKtGcXUR8/Xmc6zn3AiEAy6lT221Al9JuXP9dMy4P6GgQ8VvGpnBcbuUG7Mp1z5Q=","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUE=","RawSubjectPublicKeyInfo":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQAB","RawTBSCertificate":"MIICmqADAgECAgoSNFZ4kKvN7xI0MAoGCCqGSM49BAMCMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowPzEYMBYGA1UEAwwPc3ZjLndhcmRlbi50ZXN0MRYwFAYDVQQKDA1Xw6RyZGVuIMOcbml0MQswCQYDVQQLDAJRQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAO6k3p+8YmDSLj7Kf7VT7MFfxbCN1EEnblw93kFOfwJksBMsA4enkrfYrfjJDrx/6YshOZn/0Ks5wR2RDGtGhfezxrdOAbGT5bFNldMvSPBgx6T6SBtSCqKl31nP5WFQ26PvQ5yOJtmc172V2oRS5AePT4mhlkNDgISeFtHxDzKOMdc3CdbYzO6lZb9zC0GpeQivlpXTTGaRjNEhi0XcIXJWm81yKYmpmnAY+Ou6mfiI85eNr7ElOGq9iRdlIMtKgmk3y8wNQYh5x3g9zDhAPyf3AfQSBFTFkH2w6SXOxennHOk+MTvnNwyrThEqvuAWso2UpNT6YgRr/LxS394czjcCAwEAAaOBrjCBqzBsBgNVHREEZTBjgg9zdmMud2FyZGVuLnRlc3SCDSoud2FyZGVuLnRlc3SBD29wc0B3YXJkZW4udGVzdIcECgAAAYcQIAENuAAAAAAAAAAAAAAAAYYYc3BpZmZlOi8vd2FyZGVuLnRlc3Qvc3ZjMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgWgMB0GA1UdJQQWMBQGCCsGAQUFBwMBBggrBgEFBQcDAg==","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":"#num:85968058272638546416180","Signature":"MEYCIQDIxWp9bba7suU/ivYWE9OP7tZZLyrRnF1EfP15nOs59wIhAMupU9ttQJfSblz/XTMuD+hoEPFbxqZwXG7lBuzKdc+U","SignatureAlgorithm":10,"Subject":{"CommonName":"svc.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"svc.warden.test"},{"Type":[2,5,4,10],"Value":"Wärden Ünit"},{"Type":[2,5,4,11],"Value":"QA"}],"Organization":["Wärden Ünit"],"OrganizationalUnit":["QA"],"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":["spiffe://warden.test/svc"],"URIs":[{"ForceQuery":false,"Fragment":"","Host":"warden.test","OmitHost":false,"Opaque":"","Path":"/svc","RawFragment":"","RawPath":"","RawQuery":"","Scheme":"spiffe","User":null}],"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]"##,
        ),
    ),
    (
        "x509_parse_fields",
        r#"[[c.Subject.CommonName, c.Subject.Organization, c.Issuer.CommonName, c.SerialNumber, c.NotBefore, c.NotAfter, c.DNSNames, c.IPAddresses, c.URIStrings, c.IsCA, c.KeyUsage, c.ExtKeyUsage] | c := crypto.x509.parse_certificates(data.fixtures.leaf_cert)[_]]"#,
        Some(
            r##"[["svc.warden.test",["Wärden Ünit"],"Warden Test Root","#num:85968058272638546416180","2025-01-01T00:00:00Z","2123-07-27T00:00:00Z",["svc.warden.test","*.warden.test"],["10.0.0.1","2001:db8::1"],["spiffe://warden.test/svc"],false,5,[1,2]]]"##,
        ),
    ),
    (
        "x509_parse_wrong_block",
        r#"crypto.x509.parse_certificates(data.fixtures.rsa_priv_pkcs8)"#,
        None,
    ),
    (
        "x509_parse_garbage",
        r#"crypto.x509.parse_certificates("not a certificate")"#,
        None,
    ),
    (
        "x509_parse_empty_b64",
        r#"crypto.x509.parse_certificates("")"#,
        Some(r#"[]"#),
    ),
    (
        "x509_verify_chain",
        r#"crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]))"#,
        Some(
            r##"[true,[{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":["svc.warden.test","*.warden.test"],"EmailAddresses":["ops@warden.test"],"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":[1,2],"Extensions":[{"Critical":false,"Id":[2,5,29,17],"Value":"MGOCD3N2Yy53YXJkZW4udGVzdIINKi53YXJkZW4udGVzdIEPb3BzQHdhcmRlbi50ZXN0hwQKAAABhxAgAQ24AAAAAAAAAAAAAAABhhhzcGlmZmU6Ly93YXJkZW4udGVzdC9zdmM="},{"Critical":true,"Id":[2,5,29,19],"Value":"MAA="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIFoA=="},{"Critical":false,"Id":[2,5,29,37],"Value":"MBQGCCsGAQUFBwMBBggrBgEFBQcDAg=="}],"ExtraExtensions":null,"IPAddresses":["10.0.0.1","2001:db8::1"],"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":5,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799"},"PublicKeyAlgorithm":1,"Raw":"MIIC9TCCApqgAwIBAgIKEjRWeJCrze8SNDAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUEwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6fvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8Ut/eHM43AgMBAAGjga4wgaswbAYDVR0RBGUwY4IPc3ZjLndhcmRlbi50ZXN0gg0qLndhcmRlbi50ZXN0gQ9vcHNAd2FyZGVuLnRlc3SHBAoAAAGHECABDbgAAAAAAAAAAAAAAAGGGHNwaWZmZTovL3dhcmRlbi50ZXN0L3N2YzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSQAwRgIhAMjFan1ttruy5T+K9hYT04/u1lkvKtGcXUR8/Xmc6zn3AiEAy6lT221Al9JuXP9dMy4P6GgQ8VvGpnBcbuUG7Mp1z5Q=","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUE=","RawSubjectPublicKeyInfo":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQAB","RawTBSCertificate":"MIICmqADAgECAgoSNFZ4kKvN7xI0MAoGCCqGSM49BAMCMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowPzEYMBYGA1UEAwwPc3ZjLndhcmRlbi50ZXN0MRYwFAYDVQQKDA1Xw6RyZGVuIMOcbml0MQswCQYDVQQLDAJRQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAO6k3p+8YmDSLj7Kf7VT7MFfxbCN1EEnblw93kFOfwJksBMsA4enkrfYrfjJDrx/6YshOZn/0Ks5wR2RDGtGhfezxrdOAbGT5bFNldMvSPBgx6T6SBtSCqKl31nP5WFQ26PvQ5yOJtmc172V2oRS5AePT4mhlkNDgISeFtHxDzKOMdc3CdbYzO6lZb9zC0GpeQivlpXTTGaRjNEhi0XcIXJWm81yKYmpmnAY+Ou6mfiI85eNr7ElOGq9iRdlIMtKgmk3y8wNQYh5x3g9zDhAPyf3AfQSBFTFkH2w6SXOxennHOk+MTvnNwyrThEqvuAWso2UpNT6YgRr/LxS394czjcCAwEAAaOBrjCBqzBsBgNVHREEZTBjgg9zdmMud2FyZGVuLnRlc3SCDSoud2FyZGVuLnRlc3SBD29wc0B3YXJkZW4udGVzdIcECgAAAYcQIAENuAAAAAAAAAAAAAAAAYYYc3BpZmZlOi8vd2FyZGVuLnRlc3Qvc3ZjMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgWgMB0GA1UdJQQWMBQGCCsGAQUFBwMBBggrBgEFBQcDAg==","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":"#num:85968058272638546416180","Signature":"MEYCIQDIxWp9bba7suU/ivYWE9OP7tZZLyrRnF1EfP15nOs59wIhAMupU9ttQJfSblz/XTMuD+hoEPFbxqZwXG7lBuzKdc+U","SignatureAlgorithm":10,"Subject":{"CommonName":"svc.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"svc.warden.test"},{"Type":[2,5,4,10],"Value":"Wärden Ünit"},{"Type":[2,5,4,11],"Value":"QA"}],"Organization":["Wärden Ünit"],"OrganizationalUnit":["QA"],"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":["spiffe://warden.test/svc"],"URIs":[{"ForceQuery":false,"Fragment":"","Host":"warden.test","OmitHost":false,"Opaque":"","Path":"/svc","RawFragment":"","RawPath":"","RawQuery":"","Scheme":"spiffe","User":null}],"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3},{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":[{"Critical":true,"Id":[2,5,29,19],"Value":"MAMBAf8="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIBhg=="}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":true,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":97,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2124-12-08T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"},"PublicKeyAlgorithm":3,"Raw":"MIIBmDCCAT2gAwIBAgICEAAwCgYIKoZIzj0EAwIwQTELMAkGA1UEBhMCREUxFzAVBgNVBAoMDldhcmRlbiBUZXN0IENBMRkwFwYDVQQDDBBXYXJkZW4gVGVzdCBSb290MCAXDTI1MDEwMTAwMDAwMFoYDzIxMjQxMjA4MDAwMDAwWjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQjb4YxICOemW7STIx467O0/+pyHm4DwWZDh1FqrnrRlmdylzHpCZ5+7uxBzg1P1yI3G3pZ/BENVUeuFTzcq07+oyMwITAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAKBggqhkjOPQQDAgNJADBGAiEAq23XPPvbZ8fYhpUj3zmXXxccxR5xchI3xt6mslF1kmMCIQChdeVioTjIKihmU5SbIIORkqG/5xhQ4HYIlj8eRShXkQ==","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubjectPublicKeyInfo":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI2+GMSAjnplu0kyMeOuztP/qch5uA8FmQ4dRaq560ZZncpcx6Qmefu7sQc4NT9ciNxt6WfwRDVVHrhU83KtO/g==","RawTBSCertificate":"MIIBPaADAgECAgIQADAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyNDEyMDgwMDAwMDBaMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCNvhjEgI56ZbtJMjHjrs7T/6nIebgPBZkOHUWquetGWZ3KXMekJnn7u7EHODU/XIjcbeln8EQ1VR64VPNyrTv6jIzAhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGG","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":4096,"Signature":"MEYCIQCrbdc8+9tnx9iGlSPfOZdfFxzFHnFyEjfG3qayUXWSYwIhAKF15WKhOMgqKGZTlJsgg5GSob/nGFDgdgiWPx5FKFeR","SignatureAlgorithm":10,"Subject":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]]"##,
        ),
    ),
    (
        "x509_verify_chain_ok",
        r#"crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]))[0]"#,
        Some(r#"true"#),
    ),
    (
        "x509_verify_single",
        r#"crypto.x509.parse_and_verify_certificates(data.fixtures.leaf_cert)"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_verify_wrong_root",
        r#"crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.rsa_cert, data.fixtures.leaf_cert]))"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_verify_reversed",
        r#"crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.leaf_cert, data.fixtures.ca_cert]))"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_verify_opts_dns",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"DNSName": "svc.warden.test"})"#,
        Some(
            r##"[true,[{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":["svc.warden.test","*.warden.test"],"EmailAddresses":["ops@warden.test"],"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":[1,2],"Extensions":[{"Critical":false,"Id":[2,5,29,17],"Value":"MGOCD3N2Yy53YXJkZW4udGVzdIINKi53YXJkZW4udGVzdIEPb3BzQHdhcmRlbi50ZXN0hwQKAAABhxAgAQ24AAAAAAAAAAAAAAABhhhzcGlmZmU6Ly93YXJkZW4udGVzdC9zdmM="},{"Critical":true,"Id":[2,5,29,19],"Value":"MAA="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIFoA=="},{"Critical":false,"Id":[2,5,29,37],"Value":"MBQGCCsGAQUFBwMBBggrBgEFBQcDAg=="}],"ExtraExtensions":null,"IPAddresses":["10.0.0.1","2001:db8::1"],"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":5,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799"},"PublicKeyAlgorithm":1,"Raw":"MIIC9TCCApqgAwIBAgIKEjRWeJCrze8SNDAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUEwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6fvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8Ut/eHM43AgMBAAGjga4wgaswbAYDVR0RBGUwY4IPc3ZjLndhcmRlbi50ZXN0gg0qLndhcmRlbi50ZXN0gQ9vcHNAd2FyZGVuLnRlc3SHBAoAAAGHECABDbgAAAAAAAAAAAAAAAGGGHNwaWZmZTovL3dhcmRlbi50ZXN0L3N2YzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSQAwRgIhAMjFan1ttruy5T+K9hYT04/u1lkvKtGcXUR8/Xmc6zn3AiEAy6lT221Al9JuXP9dMy4P6GgQ8VvGpnBcbuUG7Mp1z5Q=","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUE=","RawSubjectPublicKeyInfo":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQAB","RawTBSCertificate":"MIICmqADAgECAgoSNFZ4kKvN7xI0MAoGCCqGSM49BAMCMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowPzEYMBYGA1UEAwwPc3ZjLndhcmRlbi50ZXN0MRYwFAYDVQQKDA1Xw6RyZGVuIMOcbml0MQswCQYDVQQLDAJRQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAO6k3p+8YmDSLj7Kf7VT7MFfxbCN1EEnblw93kFOfwJksBMsA4enkrfYrfjJDrx/6YshOZn/0Ks5wR2RDGtGhfezxrdOAbGT5bFNldMvSPBgx6T6SBtSCqKl31nP5WFQ26PvQ5yOJtmc172V2oRS5AePT4mhlkNDgISeFtHxDzKOMdc3CdbYzO6lZb9zC0GpeQivlpXTTGaRjNEhi0XcIXJWm81yKYmpmnAY+Ou6mfiI85eNr7ElOGq9iRdlIMtKgmk3y8wNQYh5x3g9zDhAPyf3AfQSBFTFkH2w6SXOxennHOk+MTvnNwyrThEqvuAWso2UpNT6YgRr/LxS394czjcCAwEAAaOBrjCBqzBsBgNVHREEZTBjgg9zdmMud2FyZGVuLnRlc3SCDSoud2FyZGVuLnRlc3SBD29wc0B3YXJkZW4udGVzdIcECgAAAYcQIAENuAAAAAAAAAAAAAAAAYYYc3BpZmZlOi8vd2FyZGVuLnRlc3Qvc3ZjMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgWgMB0GA1UdJQQWMBQGCCsGAQUFBwMBBggrBgEFBQcDAg==","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":"#num:85968058272638546416180","Signature":"MEYCIQDIxWp9bba7suU/ivYWE9OP7tZZLyrRnF1EfP15nOs59wIhAMupU9ttQJfSblz/XTMuD+hoEPFbxqZwXG7lBuzKdc+U","SignatureAlgorithm":10,"Subject":{"CommonName":"svc.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"svc.warden.test"},{"Type":[2,5,4,10],"Value":"Wärden Ünit"},{"Type":[2,5,4,11],"Value":"QA"}],"Organization":["Wärden Ünit"],"OrganizationalUnit":["QA"],"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIs":[{"ForceQuery":false,"Fragment":"","Host":"warden.test","OmitHost":false,"Opaque":"","Path":"/svc","RawFragment":"","RawPath":"","RawQuery":"","Scheme":"spiffe","User":null}],"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3},{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":[{"Critical":true,"Id":[2,5,29,19],"Value":"MAMBAf8="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIBhg=="}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":true,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":97,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2124-12-08T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"},"PublicKeyAlgorithm":3,"Raw":"MIIBmDCCAT2gAwIBAgICEAAwCgYIKoZIzj0EAwIwQTELMAkGA1UEBhMCREUxFzAVBgNVBAoMDldhcmRlbiBUZXN0IENBMRkwFwYDVQQDDBBXYXJkZW4gVGVzdCBSb290MCAXDTI1MDEwMTAwMDAwMFoYDzIxMjQxMjA4MDAwMDAwWjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQjb4YxICOemW7STIx467O0/+pyHm4DwWZDh1FqrnrRlmdylzHpCZ5+7uxBzg1P1yI3G3pZ/BENVUeuFTzcq07+oyMwITAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAKBggqhkjOPQQDAgNJADBGAiEAq23XPPvbZ8fYhpUj3zmXXxccxR5xchI3xt6mslF1kmMCIQChdeVioTjIKihmU5SbIIORkqG/5xhQ4HYIlj8eRShXkQ==","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubjectPublicKeyInfo":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI2+GMSAjnplu0kyMeOuztP/qch5uA8FmQ4dRaq560ZZncpcx6Qmefu7sQc4NT9ciNxt6WfwRDVVHrhU83KtO/g==","RawTBSCertificate":"MIIBPaADAgECAgIQADAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyNDEyMDgwMDAwMDBaMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCNvhjEgI56ZbtJMjHjrs7T/6nIebgPBZkOHUWquetGWZ3KXMekJnn7u7EHODU/XIjcbeln8EQ1VR64VPNyrTv6jIzAhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGG","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":4096,"Signature":"MEYCIQCrbdc8+9tnx9iGlSPfOZdfFxzFHnFyEjfG3qayUXWSYwIhAKF15WKhOMgqKGZTlJsgg5GSob/nGFDgdgiWPx5FKFeR","SignatureAlgorithm":10,"Subject":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]]"##,
        ),
    ),
    (
        "x509_verify_opts_dns_wild",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"DNSName": "api.warden.test"})[0]"#,
        Some(r#"true"#),
    ),
    (
        "x509_verify_opts_dns_bad",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"DNSName": "evil.test"})"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_verify_opts_time_before",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"CurrentTime": 1600000000000000000})"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_verify_opts_time_ok",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"CurrentTime": 1800000000000000000})[0]"#,
        Some(r#"true"#),
    ),
    (
        "x509_verify_opts_client",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"KeyUsages": ["KeyUsageClientAuth"]})[0]"#,
        Some(r#"true"#),
    ),
    (
        "x509_verify_opts_codesign",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"KeyUsages": ["KeyUsageCodeSigning"]})"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_verify_opts_any",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"KeyUsages": ["KeyUsageAny"]})[0]"#,
        Some(r#"true"#),
    ),
    (
        "x509_verify_opts_bad_usage",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"KeyUsages": ["Nope"]})"#,
        None,
    ),
    (
        "x509_verify_opts_unknown",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf_cert]), {"Foo": 1})"#,
        None,
    ),
    (
        "x509_csr",
        r#"crypto.x509.parse_certificate_request(data.fixtures.csr)"#,
        Some(
            r##"{"Attributes":[{"Type":[1,2,840,113549,1,9,14],"Value":[[{"Type":[2,5,29,17],"Value":"MBGCD3N2Yy53YXJkZW4udGVzdA=="}]]}],"DNSNames":["svc.warden.test"],"EmailAddresses":null,"Extensions":[{"Critical":false,"Id":[2,5,29,17],"Value":"MBGCD3N2Yy53YXJkZW4udGVzdA=="}],"ExtraExtensions":null,"IPAddresses":null,"PublicKey":{"E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799"},"PublicKeyAlgorithm":1,"Raw":"MIICsTCCAZkCAQAwPzEYMBYGA1UEAwwPc3ZjLndhcmRlbi50ZXN0MRYwFAYDVQQKDA1Xw6RyZGVuIMOcbml0MQswCQYDVQQLDAJRQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAO6k3p+8YmDSLj7Kf7VT7MFfxbCN1EEnblw93kFOfwJksBMsA4enkrfYrfjJDrx/6YshOZn/0Ks5wR2RDGtGhfezxrdOAbGT5bFNldMvSPBgx6T6SBtSCqKl31nP5WFQ26PvQ5yOJtmc172V2oRS5AePT4mhlkNDgISeFtHxDzKOMdc3CdbYzO6lZb9zC0GpeQivlpXTTGaRjNEhi0XcIXJWm81yKYmpmnAY+Ou6mfiI85eNr7ElOGq9iRdlIMtKgmk3y8wNQYh5x3g9zDhAPyf3AfQSBFTFkH2w6SXOxennHOk+MTvnNwyrThEqvuAWso2UpNT6YgRr/LxS394czjcCAwEAAaAtMCsGCSqGSIb3DQEJDjEeMBwwGgYDVR0RBBMwEYIPc3ZjLndhcmRlbi50ZXN0MA0GCSqGSIb3DQEBCwUAA4IBAQAUtLPaxAjmpAkU1gCnC44E+llDC1GNdybld3kCRBoHIKCe6vAB8y1xOsYDGwLK/NnqJha0rCAGz+TsFXHkNdcizSb8r5R9W19NDtWhKH07c3xpUnXlqppEIhitZ/tLooOqcMWaN+CGCdUY+ESGMFYj7ctVd3gFaVp9pglxttwAk/TIFA702X9MqhXSdMGaPbHaDqfomA3S0H69I/f2Bff+ej2dszIXUVKfgxFaFryDssoRjr+ymld7atbbolbhAvOTHustxHr+P420DqInso2M05Gz416lTGOwGvC26s8d7xgvKgapSbqRXQZ6AUc7obgfHYBemJV8mByWJhpmE4EQ","RawSubject":"MD8xGDAWBgNVBAMMD3N2Yy53YXJkZW4udGVzdDEWMBQGA1UECgwNV8OkcmRlbiDDnG5pdDELMAkGA1UECwwCUUE=","RawSubjectPublicKeyInfo":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQAB","RawTBSCertificateRequest":"MIIBmQIBADA/MRgwFgYDVQQDDA9zdmMud2FyZGVuLnRlc3QxFjAUBgNVBAoMDVfDpHJkZW4gw5xuaXQxCzAJBgNVBAsMAlFBMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQABoC0wKwYJKoZIhvcNAQkOMR4wHDAaBgNVHREEEzARgg9zdmMud2FyZGVuLnRlc3Q=","Signature":"FLSz2sQI5qQJFNYApwuOBPpZQwtRjXcm5Xd5AkQaByCgnurwAfMtcTrGAxsCyvzZ6iYWtKwgBs/k7BVx5DXXIs0m/K+UfVtfTQ7VoSh9O3N8aVJ15aqaRCIYrWf7S6KDqnDFmjfghgnVGPhEhjBWI+3LVXd4BWlafaYJcbbcAJP0yBQO9Nl/TKoV0nTBmj2x2g6n6JgN0tB+vSP39gX3/no9nbMyF1FSn4MRWha8g7LKEY6/sppXe2rW26JW4QLzkx7rLcR6/j+NtA6iJ7KNjNORs+NepUxjsBrwturPHe8YLyoGqUm6kV0GegFHO6G4Hx2AXpiVfJgcliYaZhOBEA==","SignatureAlgorithm":4,"Subject":{"CommonName":"svc.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"svc.warden.test"},{"Type":[2,5,4,10],"Value":"Wärden Ünit"},{"Type":[2,5,4,11],"Value":"QA"}],"Organization":["Wärden Ünit"],"OrganizationalUnit":["QA"],"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"URIs":null,"Version":0}"##,
        ),
    ),
    (
        "x509_csr_b64",
        r#"crypto.x509.parse_certificate_request(base64.encode(data.fixtures.csr)).Subject"#,
        Some(
            r#"{"CommonName":"svc.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"svc.warden.test"},{"Type":[2,5,4,10],"Value":"Wärden Ünit"},{"Type":[2,5,4,11],"Value":"QA"}],"Organization":["Wärden Ünit"],"OrganizationalUnit":["QA"],"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null}"#,
        ),
    ),
    (
        "x509_csr_wrong",
        r#"crypto.x509.parse_certificate_request(data.fixtures.leaf_cert)"#,
        None,
    ),
    (
        "x509_rsa_key_pkcs1",
        r#"crypto.x509.parse_rsa_private_key(data.fixtures.rsa_priv_pkcs1)"#,
        Some(
            r#"{"d":"TNUwB-WzFtEUqoqvy0WV-DxJfapsJ_31_iS9JfGL2s1oEwQcrtQ43JAakvrIj8_u9ShhTz-Zg0c48bf9c5xlDXcIB4RJ705aqVb9Ydzbcuj13hvmk0U6v1sAKf5RL5_E12b1MbZis7VXkGZq0CeP2w884Gbx5f4ZppjvZ_BgoDmgjiRKi04xXFJzAsW00N3F2mvd92Q1ydsPxZAohJqbgik_FOYV5hHcY7NVPsejtfebyImGsEPVClOnZ6-TLCGrWhBRp_tT5HyLX3BWTS_e5shKrLUv0_pML_0HpwR9KgVbITJ0rbp1jlyiTXu_c5huY5QRLim1Nf-5wsGzlYu74Q","dp":"MXWWWoEepugSeiFEaCEvz-PiT49GLLQsfIxuqQn8XNskIUOtgmHvORWGTFUlbxntpIuZh1FOd3j_gwFl8XFEc2F9Ph7adjBwbK2Q7OhBRFJexKKEZnUo1nCRwLc4S-oSv_L9YCFeo2n2qZS1DBV5JvFiZOmOa-djRDxyqXrL0FE","dq":"XukO-zL8vBW0UAPj_j1qM5QiGLn53f_zFRPb8DPrywEGedWef48kqfZ7Ybgeoyqnbt5cRSvqbuu1mpSj56ILNEoDAtlxwZeyKC3VdGgYLCIgBimz20O8bhnYj1iRRw9VxxMNCzKzc_ngoDCXb0ZIyf-JvtCLchD5zcIuyw2rAaE","e":"AQAB","kty":"RSA","n":"7qTen7xiYNIuPsp_tVPswV_FsI3UQSduXD3eQU5_AmSwEywDh6eSt9it-MkOvH_piyE5mf_QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc_lYVDbo-9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK-WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ-Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA_J_cB9BIEVMWQfbDpJc7F6ecc6T4xO-c3DKtOESq-4BayjZSk1PpiBGv8vFLf3hzONw","p":"-pLByGuFTd39MaCp5xiySYha8U7MJoSJHhk8bWkSV4o7I8aqJ0B3lviL_WBzVudlc5i9FtqX155MOumJomsjtqh2af7nPm9FILtmo5DTINgBuMhK51VRw2RgmW3kg8RyL-zy695piMxt8VfW2l7HF8xBqw-9TEQPbbVpFQGHlOs","q":"88_5TK7rrk22Cv_1vv2YnVL7ZIvd4eotAUYXUh7yQxQqA1UYiT-KaCZD1c9bOfjhq8S1I1LCsphovjI8z9BYNN-42BE5qymzal2T-JcLhZor6fECN6CMgFgMnYNB5x7f36g4LPO0SVhuFD3jlLp7ToNed9_-GX3pWXeoJn83yOU","qi":"rFePH8uYWCkaTR04ZhcjWnlQp-vqQ-9W5rujjHzZz6eSLSy6NTG3e4bozvChmI4S_hj-fLS1eIgWsbUb5DeVVy0myw9o96OZqcShip6msX6XvSljyzpH3a9R5vMLmO_y36Gv7DmqH_nEwzeBd_PaX7rdTYkc48Rq0JZtVmW8UZM"}"#,
        ),
    ),
    (
        "x509_rsa_key_pkcs8",
        r#"crypto.x509.parse_rsa_private_key(data.fixtures.rsa_priv_pkcs8)"#,
        Some(
            r#"{"d":"TNUwB-WzFtEUqoqvy0WV-DxJfapsJ_31_iS9JfGL2s1oEwQcrtQ43JAakvrIj8_u9ShhTz-Zg0c48bf9c5xlDXcIB4RJ705aqVb9Ydzbcuj13hvmk0U6v1sAKf5RL5_E12b1MbZis7VXkGZq0CeP2w884Gbx5f4ZppjvZ_BgoDmgjiRKi04xXFJzAsW00N3F2mvd92Q1ydsPxZAohJqbgik_FOYV5hHcY7NVPsejtfebyImGsEPVClOnZ6-TLCGrWhBRp_tT5HyLX3BWTS_e5shKrLUv0_pML_0HpwR9KgVbITJ0rbp1jlyiTXu_c5huY5QRLim1Nf-5wsGzlYu74Q","dp":"MXWWWoEepugSeiFEaCEvz-PiT49GLLQsfIxuqQn8XNskIUOtgmHvORWGTFUlbxntpIuZh1FOd3j_gwFl8XFEc2F9Ph7adjBwbK2Q7OhBRFJexKKEZnUo1nCRwLc4S-oSv_L9YCFeo2n2qZS1DBV5JvFiZOmOa-djRDxyqXrL0FE","dq":"XukO-zL8vBW0UAPj_j1qM5QiGLn53f_zFRPb8DPrywEGedWef48kqfZ7Ybgeoyqnbt5cRSvqbuu1mpSj56ILNEoDAtlxwZeyKC3VdGgYLCIgBimz20O8bhnYj1iRRw9VxxMNCzKzc_ngoDCXb0ZIyf-JvtCLchD5zcIuyw2rAaE","e":"AQAB","kty":"RSA","n":"7qTen7xiYNIuPsp_tVPswV_FsI3UQSduXD3eQU5_AmSwEywDh6eSt9it-MkOvH_piyE5mf_QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc_lYVDbo-9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK-WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ-Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA_J_cB9BIEVMWQfbDpJc7F6ecc6T4xO-c3DKtOESq-4BayjZSk1PpiBGv8vFLf3hzONw","p":"-pLByGuFTd39MaCp5xiySYha8U7MJoSJHhk8bWkSV4o7I8aqJ0B3lviL_WBzVudlc5i9FtqX155MOumJomsjtqh2af7nPm9FILtmo5DTINgBuMhK51VRw2RgmW3kg8RyL-zy695piMxt8VfW2l7HF8xBqw-9TEQPbbVpFQGHlOs","q":"88_5TK7rrk22Cv_1vv2YnVL7ZIvd4eotAUYXUh7yQxQqA1UYiT-KaCZD1c9bOfjhq8S1I1LCsphovjI8z9BYNN-42BE5qymzal2T-JcLhZor6fECN6CMgFgMnYNB5x7f36g4LPO0SVhuFD3jlLp7ToNed9_-GX3pWXeoJn83yOU","qi":"rFePH8uYWCkaTR04ZhcjWnlQp-vqQ-9W5rujjHzZz6eSLSy6NTG3e4bozvChmI4S_hj-fLS1eIgWsbUb5DeVVy0myw9o96OZqcShip6msX6XvSljyzpH3a9R5vMLmO_y36Gv7DmqH_nEwzeBd_PaX7rdTYkc48Rq0JZtVmW8UZM"}"#,
        ),
    ),
    (
        "x509_rsa_key_b64",
        r#"crypto.x509.parse_rsa_private_key(base64.encode(data.fixtures.rsa_priv_pkcs1))"#,
        Some(
            r#"{"d":"TNUwB-WzFtEUqoqvy0WV-DxJfapsJ_31_iS9JfGL2s1oEwQcrtQ43JAakvrIj8_u9ShhTz-Zg0c48bf9c5xlDXcIB4RJ705aqVb9Ydzbcuj13hvmk0U6v1sAKf5RL5_E12b1MbZis7VXkGZq0CeP2w884Gbx5f4ZppjvZ_BgoDmgjiRKi04xXFJzAsW00N3F2mvd92Q1ydsPxZAohJqbgik_FOYV5hHcY7NVPsejtfebyImGsEPVClOnZ6-TLCGrWhBRp_tT5HyLX3BWTS_e5shKrLUv0_pML_0HpwR9KgVbITJ0rbp1jlyiTXu_c5huY5QRLim1Nf-5wsGzlYu74Q","dp":"MXWWWoEepugSeiFEaCEvz-PiT49GLLQsfIxuqQn8XNskIUOtgmHvORWGTFUlbxntpIuZh1FOd3j_gwFl8XFEc2F9Ph7adjBwbK2Q7OhBRFJexKKEZnUo1nCRwLc4S-oSv_L9YCFeo2n2qZS1DBV5JvFiZOmOa-djRDxyqXrL0FE","dq":"XukO-zL8vBW0UAPj_j1qM5QiGLn53f_zFRPb8DPrywEGedWef48kqfZ7Ybgeoyqnbt5cRSvqbuu1mpSj56ILNEoDAtlxwZeyKC3VdGgYLCIgBimz20O8bhnYj1iRRw9VxxMNCzKzc_ngoDCXb0ZIyf-JvtCLchD5zcIuyw2rAaE","e":"AQAB","kty":"RSA","n":"7qTen7xiYNIuPsp_tVPswV_FsI3UQSduXD3eQU5_AmSwEywDh6eSt9it-MkOvH_piyE5mf_QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc_lYVDbo-9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK-WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ-Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA_J_cB9BIEVMWQfbDpJc7F6ecc6T4xO-c3DKtOESq-4BayjZSk1PpiBGv8vFLf3hzONw","p":"-pLByGuFTd39MaCp5xiySYha8U7MJoSJHhk8bWkSV4o7I8aqJ0B3lviL_WBzVudlc5i9FtqX155MOumJomsjtqh2af7nPm9FILtmo5DTINgBuMhK51VRw2RgmW3kg8RyL-zy695piMxt8VfW2l7HF8xBqw-9TEQPbbVpFQGHlOs","q":"88_5TK7rrk22Cv_1vv2YnVL7ZIvd4eotAUYXUh7yQxQqA1UYiT-KaCZD1c9bOfjhq8S1I1LCsphovjI8z9BYNN-42BE5qymzal2T-JcLhZor6fECN6CMgFgMnYNB5x7f36g4LPO0SVhuFD3jlLp7ToNed9_-GX3pWXeoJn83yOU","qi":"rFePH8uYWCkaTR04ZhcjWnlQp-vqQ-9W5rujjHzZz6eSLSy6NTG3e4bozvChmI4S_hj-fLS1eIgWsbUb5DeVVy0myw9o96OZqcShip6msX6XvSljyzpH3a9R5vMLmO_y36Gv7DmqH_nEwzeBd_PaX7rdTYkc48Rq0JZtVmW8UZM"}"#,
        ),
    ),
    (
        "x509_ec_key_sec1",
        r#"crypto.x509.parse_rsa_private_key(data.fixtures.ec_priv_sec1)"#,
        Some(
            r#"{"crv":"P-256","d":"YcH-YuY3PtIoPTSviJY9_vzUcKWNAz9T1Pwselu43s8","kty":"EC","x":"I2-GMSAjnplu0kyMeOuztP_qch5uA8FmQ4dRaq560ZY","y":"Z3KXMekJnn7u7EHODU_XIjcbeln8EQ1VR64VPNyrTv4"}"#,
        ),
    ),
    (
        "x509_ec_key_pkcs8",
        r#"crypto.x509.parse_rsa_private_key(data.fixtures.p384_priv)"#,
        Some(
            r#"{"crv":"P-384","d":"W6OA7SGYABEs6UI3E4ba4hgDfxct8vWiY-6GVe0k6srC_6ujnECQhWB_D07070Tx","kty":"EC","x":"w8S3tHiVS6itIzlIBGXC96CDS_ROmWXGRAR70q3PlXW82aP9NpOylkegkD5epdeL","y":"5ZgkCekr_Xu_P0mp9qynTmL8P9VXnFMQpzWWXaSmSgFin3TVtkWyeO3MGa4J_5fz"}"#,
        ),
    ),
    (
        "x509_key_garbage",
        r#"crypto.x509.parse_rsa_private_key("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")"#,
        None,
    ),
    ("x509_key_empty", r#"crypto.x509.parse_rsa_private_key("")"#, None),
    (
        "x509_keypair_rsa",
        r#"crypto.x509.parse_keypair(data.fixtures.rsa_cert, data.fixtures.rsa_priv_pkcs1)"#,
        Some(
            r##"{"Certificate":["MIICoTCCAYmgAwIBAgIBBzANBgkqhkiG9w0BAQsFADATMREwDwYDVQQDDAhyc2Etc2VsZjAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowEzERMA8GA1UEAwwIcnNhLXNlbGYwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6fvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8Ut/eHM43AgMBAAEwDQYJKoZIhvcNAQELBQADggEBADL7ECljHJwx49mkrdt7S5qN5/BBE9aTRLbUXCAusEc3Ia/CT8Dt+WrRbRjiDAF290kR94x30J+rRFK31S+iAITVIVASqPxX+VUUsjwYkpMmLAlYKCGggeCabVoRKNMxf/J9Mt19kwiWotyK/m0QNG/9yD/0g8mXxXX6sqPiZGhFw+uYxrQ8TuBRdOJxSPFm+pgaPPn+1I274YCXtuCUW9CPX5SJIeVxMUWaL8zzxs3Y4aYRY76s9ptWNvzl4JMhe+5DO/qKuzT4EKxwL9dIz6FDMERyHI6J/N2E7809DT5der3r3yuPRZYpv5yGJRYSZyExATLFZp4S1de6pvm5qog="],"Leaf":{"AuthorityKeyId":null,"BasicConstraintsValid":false,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":null,"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"rsa-self","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"rsa-self"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":0,"MaxPathLen":0,"MaxPathLenZero":false,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799"},"PublicKeyAlgorithm":1,"Raw":"MIICoTCCAYmgAwIBAgIBBzANBgkqhkiG9w0BAQsFADATMREwDwYDVQQDDAhyc2Etc2VsZjAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowEzERMA8GA1UEAwwIcnNhLXNlbGYwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDupN6fvGJg0i4+yn+1U+zBX8WwjdRBJ25cPd5BTn8CZLATLAOHp5K32K34yQ68f+mLITmZ/9CrOcEdkQxrRoX3s8a3TgGxk+WxTZXTL0jwYMek+kgbUgqipd9Zz+VhUNuj70OcjibZnNe9ldqEUuQHj0+JoZZDQ4CEnhbR8Q8yjjHXNwnW2MzupWW/cwtBqXkIr5aV00xmkYzRIYtF3CFyVpvNcimJqZpwGPjrupn4iPOXja+xJThqvYkXZSDLSoJpN8vMDUGIecd4Pcw4QD8n9wH0EgRUxZB9sOklzsXp5xzpPjE75zcMq04RKr7gFrKNlKTU+mIEa/y8Ut/eHM43AgMBAAEwDQYJKoZIhvcNAQELBQADggEBADL7ECljHJwx49mkrdt7S5qN5/BBE9aTRLbUXCAusEc3Ia/CT8Dt+WrRbRjiDAF290kR94x30J+rRFK31S+iAITVIVASqPxX+VUUsjwYkpMmLAlYKCGggeCabVoRKNMxf/J9Mt19kwiWotyK/m0QNG/9yD/0g8mXxXX6sqPiZGhFw+uYxrQ8TuBRdOJxSPFm+pgaPPn+1I274YCXtuCUW9CPX5SJIeVxMUWaL8zzxs3Y4aYRY76s9ptWNvzl4JMhe+5DO/qKuzT4EKxwL9dIz6FDMERyHI6J/N2E7809DT5der3r3yuPRZYpv5yGJRYSZyExATLFZp4S1de6pvm5qog=","RawIssuer":"MBMxETAPBgNVBAMMCHJzYS1zZWxm","RawSubject":"MBMxETAPBgNVBAMMCHJzYS1zZWxm","RawSubjectPublicKeyInfo":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7qTen7xiYNIuPsp/tVPswV/FsI3UQSduXD3eQU5/AmSwEywDh6eSt9it+MkOvH/piyE5mf/QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc/lYVDbo+9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK+WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ+Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA/J/cB9BIEVMWQfbDpJc7F6ecc6T4xO+c3DKtOESq+4BayjZSk1PpiBGv8vFLf3hzONwIDAQAB","RawTBSCertificate":"MIIBiaADAgECAgEHMA0GCSqGSIb3DQEBCwUAMBMxETAPBgNVBAMMCHJzYS1zZWxmMCAXDTI1MDEwMTAwMDAwMFoYDzIxMjMwNzI3MDAwMDAwWjATMREwDwYDVQQDDAhyc2Etc2VsZjCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAO6k3p+8YmDSLj7Kf7VT7MFfxbCN1EEnblw93kFOfwJksBMsA4enkrfYrfjJDrx/6YshOZn/0Ks5wR2RDGtGhfezxrdOAbGT5bFNldMvSPBgx6T6SBtSCqKl31nP5WFQ26PvQ5yOJtmc172V2oRS5AePT4mhlkNDgISeFtHxDzKOMdc3CdbYzO6lZb9zC0GpeQivlpXTTGaRjNEhi0XcIXJWm81yKYmpmnAY+Ou6mfiI85eNr7ElOGq9iRdlIMtKgmk3y8wNQYh5x3g9zDhAPyf3AfQSBFTFkH2w6SXOxennHOk+MTvnNwyrThEqvuAWso2UpNT6YgRr/LxS394czjcCAwEAAQ==","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":7,"Signature":"MvsQKWMcnDHj2aSt23tLmo3n8EET1pNEttRcIC6wRzchr8JPwO35atFtGOIMAXb3SRH3jHfQn6tEUrfVL6IAhNUhUBKo/Ff5VRSyPBiSkyYsCVgoIaCB4JptWhEo0zF/8n0y3X2TCJai3Ir+bRA0b/3IP/SDyZfFdfqyo+JkaEXD65jGtDxO4FF04nFI8Wb6mBo8+f7UjbvhgJe24JRb0I9flIkh5XExRZovzPPGzdjhphFjvqz2m1Y2/OXgkyF77kM7+oq7NPgQrHAv10jPoUMwRHIcjon83YTvzT0NPl16vevfK49Flim/nIYlFhJnITEBMsVmnhLV17qm+bmqiA==","SignatureAlgorithm":4,"Subject":{"CommonName":"rsa-self","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"rsa-self"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3},"OCSPStaple":null,"PrivateKey":{"D":"#num:9699237911217354750231606907209996337872412056447156529534083564565442892705920695389239866616153260188124610140547507615640453064747859758516396451063673469521184372289068545573368737664796789476567835696128861727422904723397609472044975697049409306392302453930510243432371260834327727102021838389558233878835327716372218595711782756763702829131598621365050374096336033586886609204715929294823277151357205669485247252637874254278170102893229453517327466125868858895492411278387121324058790028216611796125978098528662602031441048318403441903909638953028945747862191579550491107759976795331717823311134168472806472673","E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799","Precomputed":{"CRTValues":[],"Dp":"#num:34731519468542650937270035875121241231556331987223138898817988827756607575178368966916110079383602170638249616896455257906560947108250835842498065078788557057796352224451367140132266581114909400103073553777514095013723388950760114377349156617549547547853359532921060999726843914675723201316957485164516855889","Dq":"#num:66648338775088555771968547050727645153166092123951269351672467598419225175560320781672318457258853307273950466019167158197600866451327011092046892394982055690073828524528764630627051309030765478600357698327963850177191373810688116419361370777985849528930853132284991906092328038121510114755636905653905850785","Qinv":"#num:121022687483680248846710885592737547341450866125407671448465778945005314336733402932275614341208237355199774431226516290830796109592066450553574200281328616369703716577868300826665198267128511333046104316317305292930676814345232045743801515457371426374993933921432317284958597618468236922464984288281648451987"},"Primes":["#num:175958533658772395986075010911241557405110337774168433365169645470368335703035309754543993991385523767557124701804498163066039331372405305241944626705980648105813198495197066192242451679539874563586512947890920009656338106189391281381287235408499126286616080991732187286572214721405602307104935274058978137323","#num:171210888142951500455766018660376986531947561129170364514760054444873030743598962961291107507579706381264224352912282770727350579516330288724501300834506858880541255096113266211876962278141630494317640423146745329612048881523638565607388137216872790082217831676487986616085485365097577939430079017162120874213"]},"SignedCertificateTimestamps":null,"SupportedSignatureAlgorithms":null}"##,
        ),
    ),
    (
        "x509_keypair_pkcs8",
        r#"crypto.x509.parse_keypair(data.fixtures.rsa_cert, data.fixtures.rsa_priv_pkcs8).PrivateKey.E"#,
        Some(r#"65537"#),
    ),
    (
        "x509_keypair_b64",
        r#"crypto.x509.parse_keypair(base64.encode(data.fixtures.rsa_cert), base64.encode(data.fixtures.rsa_priv_pkcs1)).Leaf.Subject.CommonName"#,
        Some(r#""rsa-self""#),
    ),
    (
        "x509_keypair_type_mismatch",
        r#"crypto.x509.parse_keypair(data.fixtures.rsa_cert, data.fixtures.p256_priv)"#,
        None,
    ),
    (
        "x509_keypair_ec",
        r#"crypto.x509.parse_keypair(data.fixtures.ca_cert, data.fixtures.ec_priv_sec1)"#,
        Some(
            r##"{"Certificate":["MIIBmDCCAT2gAwIBAgICEAAwCgYIKoZIzj0EAwIwQTELMAkGA1UEBhMCREUxFzAVBgNVBAoMDldhcmRlbiBUZXN0IENBMRkwFwYDVQQDDBBXYXJkZW4gVGVzdCBSb290MCAXDTI1MDEwMTAwMDAwMFoYDzIxMjQxMjA4MDAwMDAwWjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQjb4YxICOemW7STIx467O0/+pyHm4DwWZDh1FqrnrRlmdylzHpCZ5+7uxBzg1P1yI3G3pZ/BENVUeuFTzcq07+oyMwITAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAKBggqhkjOPQQDAgNJADBGAiEAq23XPPvbZ8fYhpUj3zmXXxccxR5xchI3xt6mslF1kmMCIQChdeVioTjIKihmU5SbIIORkqG/5xhQ4HYIlj8eRShXkQ=="],"Leaf":{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":[{"Critical":true,"Id":[2,5,29,19],"Value":"MAMBAf8="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIBhg=="}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":true,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":97,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2124-12-08T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"},"PublicKeyAlgorithm":3,"Raw":"MIIBmDCCAT2gAwIBAgICEAAwCgYIKoZIzj0EAwIwQTELMAkGA1UEBhMCREUxFzAVBgNVBAoMDldhcmRlbiBUZXN0IENBMRkwFwYDVQQDDBBXYXJkZW4gVGVzdCBSb290MCAXDTI1MDEwMTAwMDAwMFoYDzIxMjQxMjA4MDAwMDAwWjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQjb4YxICOemW7STIx467O0/+pyHm4DwWZDh1FqrnrRlmdylzHpCZ5+7uxBzg1P1yI3G3pZ/BENVUeuFTzcq07+oyMwITAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAKBggqhkjOPQQDAgNJADBGAiEAq23XPPvbZ8fYhpUj3zmXXxccxR5xchI3xt6mslF1kmMCIQChdeVioTjIKihmU5SbIIORkqG/5xhQ4HYIlj8eRShXkQ==","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubjectPublicKeyInfo":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI2+GMSAjnplu0kyMeOuztP/qch5uA8FmQ4dRaq560ZZncpcx6Qmefu7sQc4NT9ciNxt6WfwRDVVHrhU83KtO/g==","RawTBSCertificate":"MIIBPaADAgECAgIQADAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyNDEyMDgwMDAwMDBaMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCNvhjEgI56ZbtJMjHjrs7T/6nIebgPBZkOHUWquetGWZ3KXMekJnn7u7EHODU/XIjcbeln8EQ1VR64VPNyrTv6jIzAhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGG","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":4096,"Signature":"MEYCIQCrbdc8+9tnx9iGlSPfOZdfFxzFHnFyEjfG3qayUXWSYwIhAKF15WKhOMgqKGZTlJsgg5GSob/nGFDgdgiWPx5FKFeR","SignatureAlgorithm":10,"Subject":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3},"OCSPStaple":null,"PrivateKey":{"Curve":{},"D":"#num:44217103505970479752554815771104929961379924565105009716664887827569533574863","X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"},"SignedCertificateTimestamps":null,"SupportedSignatureAlgorithms":null}"##,
        ),
    ),
    (
        "x509_keypair_wrong_key",
        r#"crypto.x509.parse_keypair(data.fixtures.ca_cert, data.fixtures.p384_priv)"#,
        None,
    ),
    (
        "x509_keypair_no_cert",
        r#"crypto.x509.parse_keypair(data.fixtures.rsa_priv_pkcs1, data.fixtures.rsa_priv_pkcs1)"#,
        None,
    ),
    (
        "keys_rsa_pkcs1",
        r#"crypto.parse_private_keys(data.fixtures.rsa_priv_pkcs1)"#,
        Some(
            r##"[{"D":"#num:9699237911217354750231606907209996337872412056447156529534083564565442892705920695389239866616153260188124610140547507615640453064747859758516396451063673469521184372289068545573368737664796789476567835696128861727422904723397609472044975697049409306392302453930510243432371260834327727102021838389558233878835327716372218595711782756763702829131598621365050374096336033586886609204715929294823277151357205669485247252637874254278170102893229453517327466125868858895492411278387121324058790028216611796125978098528662602031441048318403441903909638953028945747862191579550491107759976795331717823311134168472806472673","E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799","Precomputed":{"CRTValues":[],"Dp":"#num:34731519468542650937270035875121241231556331987223138898817988827756607575178368966916110079383602170638249616896455257906560947108250835842498065078788557057796352224451367140132266581114909400103073553777514095013723388950760114377349156617549547547853359532921060999726843914675723201316957485164516855889","Dq":"#num:66648338775088555771968547050727645153166092123951269351672467598419225175560320781672318457258853307273950466019167158197600866451327011092046892394982055690073828524528764630627051309030765478600357698327963850177191373810688116419361370777985849528930853132284991906092328038121510114755636905653905850785","Qinv":"#num:121022687483680248846710885592737547341450866125407671448465778945005314336733402932275614341208237355199774431226516290830796109592066450553574200281328616369703716577868300826665198267128511333046104316317305292930676814345232045743801515457371426374993933921432317284958597618468236922464984288281648451987"},"Primes":["#num:175958533658772395986075010911241557405110337774168433365169645470368335703035309754543993991385523767557124701804498163066039331372405305241944626705980648105813198495197066192242451679539874563586512947890920009656338106189391281381287235408499126286616080991732187286572214721405602307104935274058978137323","#num:171210888142951500455766018660376986531947561129170364514760054444873030743598962961291107507579706381264224352912282770727350579516330288724501300834506858880541255096113266211876962278141630494317640423146745329612048881523638565607388137216872790082217831676487986616085485365097577939430079017162120874213"]}]"##,
        ),
    ),
    (
        "keys_rsa_pkcs8",
        r#"crypto.parse_private_keys(data.fixtures.rsa_priv_pkcs8)"#,
        Some(
            r##"[{"D":"#num:9699237911217354750231606907209996337872412056447156529534083564565442892705920695389239866616153260188124610140547507615640453064747859758516396451063673469521184372289068545573368737664796789476567835696128861727422904723397609472044975697049409306392302453930510243432371260834327727102021838389558233878835327716372218595711782756763702829131598621365050374096336033586886609204715929294823277151357205669485247252637874254278170102893229453517327466125868858895492411278387121324058790028216611796125978098528662602031441048318403441903909638953028945747862191579550491107759976795331717823311134168472806472673","E":65537,"N":"#num:30126016824049847311181460752503390047163235494946791349577025335114949329823124389276048016038996976917020027240808625905508453673193387914402325792102368159810893848659179396741320709020748208148143424076644417584365635396081001515137989206517873825262195541385964446626886982052101244127260911020686159892159059116014334801994594893553741402363483436742263270256781578265183911823386303909903021625434291189629626267803433303586206689718763020277587640691722929044832470555843828622832253866649850426752884491571928891369550588833560954669079448836967083073935545348267592657599197680610042378589128035259123551799","Precomputed":{"CRTValues":[],"Dp":"#num:34731519468542650937270035875121241231556331987223138898817988827756607575178368966916110079383602170638249616896455257906560947108250835842498065078788557057796352224451367140132266581114909400103073553777514095013723388950760114377349156617549547547853359532921060999726843914675723201316957485164516855889","Dq":"#num:66648338775088555771968547050727645153166092123951269351672467598419225175560320781672318457258853307273950466019167158197600866451327011092046892394982055690073828524528764630627051309030765478600357698327963850177191373810688116419361370777985849528930853132284991906092328038121510114755636905653905850785","Qinv":"#num:121022687483680248846710885592737547341450866125407671448465778945005314336733402932275614341208237355199774431226516290830796109592066450553574200281328616369703716577868300826665198267128511333046104316317305292930676814345232045743801515457371426374993933921432317284958597618468236922464984288281648451987"},"Primes":["#num:175958533658772395986075010911241557405110337774168433365169645470368335703035309754543993991385523767557124701804498163066039331372405305241944626705980648105813198495197066192242451679539874563586512947890920009656338106189391281381287235408499126286616080991732187286572214721405602307104935274058978137323","#num:171210888142951500455766018660376986531947561129170364514760054444873030743598962961291107507579706381264224352912282770727350579516330288724501300834506858880541255096113266211876962278141630494317640423146745329612048881523638565607388137216872790082217831676487986616085485365097577939430079017162120874213"]}]"##,
        ),
    ),
    (
        "keys_ec_sec1",
        r#"crypto.parse_private_keys(data.fixtures.ec_priv_sec1)"#,
        Some(
            r##"[{"Curve":{},"D":"#num:44217103505970479752554815771104929961379924565105009716664887827569533574863","X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"}]"##,
        ),
    ),
    (
        "keys_p384_p521",
        r#"crypto.parse_private_keys(concat("", [data.fixtures.p384_priv, data.fixtures.p521_priv]))"#,
        Some(
            r##"[{"Curve":{},"D":"#num:14104484663909732390271224788428240913131580381478141376075528528006417670525541138869027590903368072925268847576305","X":"#num:30131518818975977091987384413635264796126902229235337632737499579814506795247871404154291980466573798913287311972235","Y":"#num:35337796982804250735825313175754307395112344819101950051371642454036680826498713337786472147029314271609294262605811"},{"Curve":{},"D":"#num:2648122933988637547701242246322180197125392774738218554524021512267133618492327364109667910308228667968736720226579757014030605448427782112560268845085570479","X":"#num:2585118078754637277366278631419628298165779843139097177378569923445374251240634660942850592088493048852221458652003049256490497522356436919932469303996869615","Y":"#num:1583229062941278892686899689129892709955039605826834106013365955137225052983816966012656694887753024273484617044267171039806822994468700756886414788545962562"}]"##,
        ),
    ),
    (
        "keys_ed25519",
        r#"crypto.parse_private_keys(data.fixtures.ed_priv)"#,
        Some(r#"["TFF6cOTaAU2+MTy2+6aJwpj9kgedf7GkXnb0kVpTBiAGkKmOKYvqJpF/KCmDMgSeZbS37iHvCNkA0tajPolPKA=="]"#),
    ),
    (
        "keys_mixed",
        r#"crypto.parse_private_keys(concat("", [data.fixtures.rsa_pub, data.fixtures.leaf_cert, data.fixtures.ec_priv_sec1]))"#,
        Some(
            r##"[{"Curve":{},"D":"#num:44217103505970479752554815771104929961379924565105009716664887827569533574863","X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"}]"##,
        ),
    ),
    (
        "keys_b64",
        r#"crypto.parse_private_keys(base64.encode(data.fixtures.ec_priv_sec1))"#,
        Some(
            r##"[{"Curve":{},"D":"#num:44217103505970479752554815771104929961379924565105009716664887827569533574863","X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"}]"##,
        ),
    ),
    ("keys_empty", r#"crypto.parse_private_keys("")"#, Some(r#"null"#)),
    ("keys_none", r#"crypto.parse_private_keys("junk")"#, Some(r#"[]"#)),
    (
        "keys_bad",
        r#"crypto.parse_private_keys("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")"#,
        None,
    ),
    (
        "x509_rsa_key_after_cert",
        r#"crypto.x509.parse_rsa_private_key(concat("", [data.fixtures.rsa_pub, data.fixtures.rsa_priv_pkcs1]))"#,
        Some(
            r#"{"d":"TNUwB-WzFtEUqoqvy0WV-DxJfapsJ_31_iS9JfGL2s1oEwQcrtQ43JAakvrIj8_u9ShhTz-Zg0c48bf9c5xlDXcIB4RJ705aqVb9Ydzbcuj13hvmk0U6v1sAKf5RL5_E12b1MbZis7VXkGZq0CeP2w884Gbx5f4ZppjvZ_BgoDmgjiRKi04xXFJzAsW00N3F2mvd92Q1ydsPxZAohJqbgik_FOYV5hHcY7NVPsejtfebyImGsEPVClOnZ6-TLCGrWhBRp_tT5HyLX3BWTS_e5shKrLUv0_pML_0HpwR9KgVbITJ0rbp1jlyiTXu_c5huY5QRLim1Nf-5wsGzlYu74Q","dp":"MXWWWoEepugSeiFEaCEvz-PiT49GLLQsfIxuqQn8XNskIUOtgmHvORWGTFUlbxntpIuZh1FOd3j_gwFl8XFEc2F9Ph7adjBwbK2Q7OhBRFJexKKEZnUo1nCRwLc4S-oSv_L9YCFeo2n2qZS1DBV5JvFiZOmOa-djRDxyqXrL0FE","dq":"XukO-zL8vBW0UAPj_j1qM5QiGLn53f_zFRPb8DPrywEGedWef48kqfZ7Ybgeoyqnbt5cRSvqbuu1mpSj56ILNEoDAtlxwZeyKC3VdGgYLCIgBimz20O8bhnYj1iRRw9VxxMNCzKzc_ngoDCXb0ZIyf-JvtCLchD5zcIuyw2rAaE","e":"AQAB","kty":"RSA","n":"7qTen7xiYNIuPsp_tVPswV_FsI3UQSduXD3eQU5_AmSwEywDh6eSt9it-MkOvH_piyE5mf_QqznBHZEMa0aF97PGt04BsZPlsU2V0y9I8GDHpPpIG1IKoqXfWc_lYVDbo-9DnI4m2ZzXvZXahFLkB49PiaGWQ0OAhJ4W0fEPMo4x1zcJ1tjM7qVlv3MLQal5CK-WldNMZpGM0SGLRdwhclabzXIpiamacBj467qZ-Ijzl42vsSU4ar2JF2Ugy0qCaTfLzA1BiHnHeD3MOEA_J_cB9BIEVMWQfbDpJc7F6ecc6T4xO-c3DKtOESq-4BayjZSk1PpiBGv8vFLf3hzONw","p":"-pLByGuFTd39MaCp5xiySYha8U7MJoSJHhk8bWkSV4o7I8aqJ0B3lviL_WBzVudlc5i9FtqX155MOumJomsjtqh2af7nPm9FILtmo5DTINgBuMhK51VRw2RgmW3kg8RyL-zy695piMxt8VfW2l7HF8xBqw-9TEQPbbVpFQGHlOs","q":"88_5TK7rrk22Cv_1vv2YnVL7ZIvd4eotAUYXUh7yQxQqA1UYiT-KaCZD1c9bOfjhq8S1I1LCsphovjI8z9BYNN-42BE5qymzal2T-JcLhZor6fECN6CMgFgMnYNB5x7f36g4LPO0SVhuFD3jlLp7ToNed9_-GX3pWXeoJn83yOU","qi":"rFePH8uYWCkaTR04ZhcjWnlQp-vqQ-9W5rujjHzZz6eSLSy6NTG3e4bozvChmI4S_hj-fLS1eIgWsbUb5DeVVy0myw9o96OZqcShip6msX6XvSljyzpH3a9R5vMLmO_y36Gv7DmqH_nEwzeBd_PaX7rdTYkc48Rq0JZtVmW8UZM"}"#,
        ),
    ),
    (
        "verify_rs256_jwks_x25519",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, json.marshal({"keys": [{"kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}, json.unmarshal(data.fixtures.rsa_jwk_pub)]}))"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs256_jwk_unknown_alg",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, json.marshal(object.union(json.unmarshal(data.fixtures.rsa_jwk_pub), {"alg": "RSA-OAEP"})))"#,
        Some(r#"false"#),
    ),
    (
        "verify_rs256_jwk_unknown_kty",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, json.marshal({"keys": [{"kty": "foo"}, json.unmarshal(data.fixtures.rsa_jwk_pub)]}))"#,
        None,
    ),
    (
        "verify_rs256_jwk_padded",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, json.marshal(object.union(json.unmarshal(data.fixtures.rsa_jwk_pub), {"e": "AQAB"})))"#,
        Some(r#"true"#),
    ),
    (
        "verify_rs256_jwk_array",
        r#"io.jwt.verify_rs256(data.fixtures.tok_rs256, json.marshal([json.unmarshal(data.fixtures.rsa_jwk_pub)]))"#,
        None,
    ),
    (
        "sign_es384_with_p256_key_verifies",
        r#"io.jwt.verify_es384(io.jwt.encode_sign({"alg": "ES384"}, {"a": 1}, json.unmarshal(data.fixtures.p256_jwk_priv)), data.fixtures.p256_pub)"#,
        Some(r#"true"#),
    ),
    (
        "sign_raw_ws_header",
        r#"io.jwt.encode_sign_raw(`{ "alg" : "HS256" }`, `{"a" : 1}`, data.fixtures.oct_jwk_text)"#,
        Some(r#""eyAiYWxnIiA6ICJIUzI1NiIgfQ.eyJhIiA6IDF9.9x4zwFRjf1eauc2sV0ctRdkDLcnkfV6sNoFpHeMJrDA""#),
    ),
    (
        "sign_hs256_jwks_first",
        r#"io.jwt.encode_sign({"alg": "HS256"}, {"a": 1}, {"keys": [data.fixtures.oct_jwk, json.unmarshal(data.fixtures.rsa_jwk_priv)]})"#,
        Some(r#""eyJhbGciOiJIUzI1NiJ9.eyJhIjoxfQ.7vRlFMiV5uiNJSSKJMIuv-_WEkDkrmiP4RO2F0Z2ArE""#),
    ),
    (
        "dv_jwks_kid_alg_mismatch",
        r#"io.jwt.decode_verify(data.fixtures.tok_rs256_kid1, {"cert": json.marshal({"keys": [object.union(json.unmarshal(data.fixtures.rsa_jwk_pub), {"kid": "k1", "alg": "PS256"})]})})"#,
        Some(r#"[false,{},{}]"#),
    ),
    (
        "verify_es256_jwk_with_d",
        r#"io.jwt.verify_es256(data.fixtures.tok_es256, data.fixtures.p256_jwk_priv)"#,
        Some(r#"false"#),
    ),
    (
        "dv_es256_private_jwk",
        r#"io.jwt.decode_verify(data.fixtures.tok_es256, {"cert": data.fixtures.p256_jwk_priv, "aud": "api", "time": 1700000000000000000})"#,
        Some(
            r#"[true,{"alg":"ES256","typ":"JWT"},{"aud":["api","ops"],"exp":2000000000,"iat":1600000000,"iss":"https://issuer.warden.test","nbf":1600000000,"sub":"Zoë Ærøskøbing 雪"}]"#,
        ),
    ),
    (
        "verify_eddsa_private_jwk",
        r#"io.jwt.verify_eddsa(data.fixtures.tok_eddsa, data.fixtures.ed_jwk_priv)"#,
        Some(r#"false"#),
    ),
    (
        "decode_cty_jwt_lower",
        r#"io.jwt.decode(concat(".", [base64url.encode_no_pad(`{"alg":"HS256","cty":"jwt"}`), base64url.encode_no_pad(`{"a":1}`), ""]))"#,
        Some(r#"[{"alg":"HS256","cty":"jwt"},{"a":1},""]"#),
    ),
    (
        "decode_header_not_object",
        r#"io.jwt.decode(concat(".", [base64url.encode_no_pad(`"x"`), base64url.encode_no_pad(`{"a":1}`), ""]))"#,
        None,
    ),
    (
        "x509_parse_intermediate",
        r#"crypto.x509.parse_certificates(data.fixtures.int_cert)"#,
        Some(
            r##"[{"AuthorityKeyId":"sr/Fdtle3HKwm1bE8EosKHBh6D0=","BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":[{"Critical":true,"Id":[2,5,29,19],"Value":"MAYBAf8CAQA="},{"Critical":false,"Id":[2,5,29,14],"Value":"BBRUP6Zyky5LtcMVWY87FUa9RqusMg=="},{"Critical":false,"Id":[2,5,29,35],"Value":"MBaAFLK/xXbZXtxysJtWxPBKLChwYeg9"}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":true,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":0,"MaxPathLen":0,"MaxPathLenZero":true,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:30131518818975977091987384413635264796126902229235337632737499579814506795247871404154291980466573798913287311972235","Y":"#num:35337796982804250735825313175754307395112344819101950051371642454036680826498713337786472147029314271609294262605811"},"PublicKeyAlgorithm":3,"Raw":"MIICFDCCAbqgAwIBAgIBCzAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMG8xITAfBgNVBAMMGFdhcmRlbiBUZXN0IEludGVybWVkaWF0ZTEPMA0GA1UEBwwGQmVybGluMQswCQYDVQQIDAJCRTEOMAwGA1UEEQwFMTAxMTUxDzANBgNVBAkMBlRlc3QgMTELMAkGA1UEBRMCNDIwdjAQBgcqhkjOPQIBBgUrgQQAIgNiAATDxLe0eJVLqK0jOUgEZcL3oINL9E6ZZcZEBHvSrc+VdbzZo/02k7KWR6CQPl6l14vlmCQJ6Sv9e78/San2rKdOYvw/1VecUxCnNZZdpKZKAWKfdNW2RbJ47cwZrgn/l/OjVjBUMBIGA1UdEwEB/wQIMAYBAf8CAQAwHQYDVR0OBBYEFFQ/pnKTLku1wxVZjzsVRr1Gq6wyMB8GA1UdIwQYMBaAFLK/xXbZXtxysJtWxPBKLChwYeg9MAoGCCqGSM49BAMCA0gAMEUCIBoMf+hbKhdI7d3UELD804kOJka16Y6GbCa/E7DKmtTMAiEA1ttBr2vd+HzwLQAnHzOHUbltlGGG0bwp5UEoF/SSG04=","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MG8xITAfBgNVBAMMGFdhcmRlbiBUZXN0IEludGVybWVkaWF0ZTEPMA0GA1UEBwwGQmVybGluMQswCQYDVQQIDAJCRTEOMAwGA1UEEQwFMTAxMTUxDzANBgNVBAkMBlRlc3QgMTELMAkGA1UEBRMCNDI=","RawSubjectPublicKeyInfo":"MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEw8S3tHiVS6itIzlIBGXC96CDS/ROmWXGRAR70q3PlXW82aP9NpOylkegkD5epdeL5ZgkCekr/Xu/P0mp9qynTmL8P9VXnFMQpzWWXaSmSgFin3TVtkWyeO3MGa4J/5fz","RawTBSCertificate":"MIIBuqADAgECAgELMAoGCCqGSM49BAMCMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowbzEhMB8GA1UEAwwYV2FyZGVuIFRlc3QgSW50ZXJtZWRpYXRlMQ8wDQYDVQQHDAZCZXJsaW4xCzAJBgNVBAgMAkJFMQ4wDAYDVQQRDAUxMDExNTEPMA0GA1UECQwGVGVzdCAxMQswCQYDVQQFEwI0MjB2MBAGByqGSM49AgEGBSuBBAAiA2IABMPEt7R4lUuorSM5SARlwvegg0v0TpllxkQEe9Ktz5V1vNmj/TaTspZHoJA+XqXXi+WYJAnpK/17vz9Jqfasp05i/D/VV5xTEKc1ll2kpkoBYp901bZFsnjtzBmuCf+X86NWMFQwEgYDVR0TAQH/BAgwBgEB/wIBADAdBgNVHQ4EFgQUVD+mcpMuS7XDFVmPOxVGvUarrDIwHwYDVR0jBBgwFoAUsr/Fdtle3HKwm1bE8EosKHBh6D0=","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":11,"Signature":"MEUCIBoMf+hbKhdI7d3UELD804kOJka16Y6GbCa/E7DKmtTMAiEA1ttBr2vd+HzwLQAnHzOHUbltlGGG0bwp5UEoF/SSG04=","SignatureAlgorithm":10,"Subject":{"CommonName":"Warden Test Intermediate","Country":null,"ExtraNames":null,"Locality":["Berlin"],"Names":[{"Type":[2,5,4,3],"Value":"Warden Test Intermediate"},{"Type":[2,5,4,7],"Value":"Berlin"},{"Type":[2,5,4,8],"Value":"BE"},{"Type":[2,5,4,17],"Value":"10115"},{"Type":[2,5,4,9],"Value":"Test 1"},{"Type":[2,5,4,5],"Value":"42"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":["10115"],"Province":["BE"],"SerialNumber":"42","StreetAddress":["Test 1"]},"SubjectKeyId":"VD+mcpMuS7XDFVmPOxVGvUarrDI=","URIStrings":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]"##,
        ),
    ),
    (
        "x509_parse_rich_leaf",
        r#"crypto.x509.parse_certificates(data.fixtures.leaf2_cert)"#,
        Some(
            r##"[{"AuthorityKeyId":"VD+mcpMuS7XDFVmPOxVGvUarrDI=","BasicConstraintsValid":false,"CRLDistributionPoints":["http://crl.warden.test/i.crl"],"DNSNames":["client.warden.test"],"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":[2],"Extensions":[{"Critical":false,"Id":[2,5,29,17],"Value":"MECCEmNsaWVudC53YXJkZW4udGVzdIYqaHR0cHM6Ly91c2VyQHdhcmRlbi50ZXN0Ojg0NDMvYS9iP3g9MSNmcmFn"},{"Critical":false,"Id":[2,5,29,37],"Value":"MBAGCCsGAQUFBwMCBgQqAwQF"},{"Critical":false,"Id":[2,5,29,14],"Value":"BBStJEnv6CnvFRPYwHUR07eJJhajAw=="},{"Critical":false,"Id":[2,5,29,35],"Value":"MBaAFFQ/pnKTLku1wxVZjzsVRr1Gq6wy"},{"Critical":false,"Id":[1,3,6,1,5,5,7,1,1],"Value":"ME4wIwYIKwYBBQUHMAGGF2h0dHA6Ly9vY3NwLndhcmRlbi50ZXN0MCcGCCsGAQUFBzAChhtodHRwOi8vY2Eud2FyZGVuLnRlc3QvaS5jcnQ="},{"Critical":false,"Id":[2,5,29,31],"Value":"MCQwIqAgoB6GHGh0dHA6Ly9jcmwud2FyZGVuLnRlc3QvaS5jcmw="},{"Critical":false,"Id":[2,5,29,32],"Value":"MAowCAYGZ4EMAQIB"},{"Critical":true,"Id":[1,2,3,99],"Value":"BQA="}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"Warden Test Intermediate","Country":null,"ExtraNames":null,"Locality":["Berlin"],"Names":[{"Type":[2,5,4,3],"Value":"Warden Test Intermediate"},{"Type":[2,5,4,7],"Value":"Berlin"},{"Type":[2,5,4,8],"Value":"BE"},{"Type":[2,5,4,17],"Value":"10115"},{"Type":[2,5,4,9],"Value":"Test 1"},{"Type":[2,5,4,5],"Value":"42"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":["10115"],"Province":["BE"],"SerialNumber":"42","StreetAddress":["Test 1"]},"IssuingCertificateURL":["http://ca.warden.test/i.crt"],"KeyUsage":0,"MaxPathLen":0,"MaxPathLenZero":false,"NotAfter":"2120-10-30T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":["http://ocsp.warden.test"],"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":["2.23.140.1.2.1"],"PolicyIdentifiers":[[2,23,140,1,2,1]],"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:2585118078754637277366278631419628298165779843139097177378569923445374251240634660942850592088493048852221458652003049256490497522356436919932469303996869615","Y":"#num:1583229062941278892686899689129892709955039605826834106013365955137225052983816966012656694887753024273484617044267171039806822994468700756886414788545962562"},"PublicKeyAlgorithm":3,"Raw":"MIIDPDCCAsKgAwIBAgIBDDAKBggqhkjOPQQDAzBvMSEwHwYDVQQDDBhXYXJkZW4gVGVzdCBJbnRlcm1lZGlhdGUxDzANBgNVBAcMBkJlcmxpbjELMAkGA1UECAwCQkUxDjAMBgNVBBEMBTEwMTE1MQ8wDQYDVQQJDAZUZXN0IDExCzAJBgNVBAUTAjQyMCAXDTI1MDEwMTAwMDAwMFoYDzIxMjAxMDMwMDAwMDAwWjAdMRswGQYDVQQDDBJjbGllbnQud2FyZGVuLnRlc3QwgZswEAYHKoZIzj0CAQYFK4EEACMDgYYABADAzpH01EzRlHeJt6boqGDW/fA+m7X0/rSMjoZMS6knh+jx+DtLRAYz/o5fP1eskBxysv2raDzp5KtGRQXggSxr7wB2FSZ1MsVFCD7u3d6e6NKywvude4SO4AqtoXIEua2EQGCh+xJMY+bJl+OqMiC70+VDsrjEDCW7KF3RLE6hd79iQqOCAVowggFWMEkGA1UdEQRCMECCEmNsaWVudC53YXJkZW4udGVzdIYqaHR0cHM6Ly91c2VyQHdhcmRlbi50ZXN0Ojg0NDMvYS9iP3g9MSNmcmFnMBkGA1UdJQQSMBAGCCsGAQUFBwMCBgQqAwQFMB0GA1UdDgQWBBStJEnv6CnvFRPYwHUR07eJJhajAzAfBgNVHSMEGDAWgBRUP6Zyky5LtcMVWY87FUa9RqusMjBcBggrBgEFBQcBAQRQME4wIwYIKwYBBQUHMAGGF2h0dHA6Ly9vY3NwLndhcmRlbi50ZXN0MCcGCCsGAQUFBzAChhtodHRwOi8vY2Eud2FyZGVuLnRlc3QvaS5jcnQwLQYDVR0fBCYwJDAioCCgHoYcaHR0cDovL2NybC53YXJkZW4udGVzdC9pLmNybDATBgNVHSAEDDAKMAgGBmeBDAECATAMBgMqA2MBAf8EAgUAMAoGCCqGSM49BAMDA2gAMGUCMH9iC+FGUxQUAsSsi0R+zLexkfUO6doc5AWIUb6AeTjYGgEyL4G/WoZOTsnHJhqW1QIxAK8DQQGLyF9m6Ht5D0pK5sZmeTm+jWUUWb9SMfuxz2lG44H7fgOq36IJIks39aZ3gg==","RawIssuer":"MG8xITAfBgNVBAMMGFdhcmRlbiBUZXN0IEludGVybWVkaWF0ZTEPMA0GA1UEBwwGQmVybGluMQswCQYDVQQIDAJCRTEOMAwGA1UEEQwFMTAxMTUxDzANBgNVBAkMBlRlc3QgMTELMAkGA1UEBRMCNDI=","RawSubject":"MB0xGzAZBgNVBAMMEmNsaWVudC53YXJkZW4udGVzdA==","RawSubjectPublicKeyInfo":"MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQAwM6R9NRM0ZR3ibem6Khg1v3wPpu19P60jI6GTEupJ4fo8fg7S0QGM/6OXz9XrJAccrL9q2g86eSrRkUF4IEsa+8AdhUmdTLFRQg+7t3enujSssL7nXuEjuAKraFyBLmthEBgofsSTGPmyZfjqjIgu9PlQ7K4xAwluyhd0SxOoXe/YkI=","RawTBSCertificate":"MIICwqADAgECAgEMMAoGCCqGSM49BAMDMG8xITAfBgNVBAMMGFdhcmRlbiBUZXN0IEludGVybWVkaWF0ZTEPMA0GA1UEBwwGQmVybGluMQswCQYDVQQIDAJCRTEOMAwGA1UEEQwFMTAxMTUxDzANBgNVBAkMBlRlc3QgMTELMAkGA1UEBRMCNDIwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMDEwMzAwMDAwMDBaMB0xGzAZBgNVBAMMEmNsaWVudC53YXJkZW4udGVzdDCBmzAQBgcqhkjOPQIBBgUrgQQAIwOBhgAEAMDOkfTUTNGUd4m3puioYNb98D6btfT+tIyOhkxLqSeH6PH4O0tEBjP+jl8/V6yQHHKy/atoPOnkq0ZFBeCBLGvvAHYVJnUyxUUIPu7d3p7o0rLC+517hI7gCq2hcgS5rYRAYKH7Ekxj5smX46oyILvT5UOyuMQMJbsoXdEsTqF3v2JCo4IBWjCCAVYwSQYDVR0RBEIwQIISY2xpZW50LndhcmRlbi50ZXN0hipodHRwczovL3VzZXJAd2FyZGVuLnRlc3Q6ODQ0My9hL2I/eD0xI2ZyYWcwGQYDVR0lBBIwEAYIKwYBBQUHAwIGBCoDBAUwHQYDVR0OBBYEFK0kSe/oKe8VE9jAdRHTt4kmFqMDMB8GA1UdIwQYMBaAFFQ/pnKTLku1wxVZjzsVRr1Gq6wyMFwGCCsGAQUFBwEBBFAwTjAjBggrBgEFBQcwAYYXaHR0cDovL29jc3Aud2FyZGVuLnRlc3QwJwYIKwYBBQUHMAKGG2h0dHA6Ly9jYS53YXJkZW4udGVzdC9pLmNydDAtBgNVHR8EJjAkMCKgIKAehhxodHRwOi8vY3JsLndhcmRlbi50ZXN0L2kuY3JsMBMGA1UdIAQMMAowCAYGZ4EMAQIBMAwGAyoDYwEB/wQCBQA=","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":12,"Signature":"MGUCMH9iC+FGUxQUAsSsi0R+zLexkfUO6doc5AWIUb6AeTjYGgEyL4G/WoZOTsnHJhqW1QIxAK8DQQGLyF9m6Ht5D0pK5sZmeTm+jWUUWb9SMfuxz2lG44H7fgOq36IJIks39aZ3gg==","SignatureAlgorithm":11,"Subject":{"CommonName":"client.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"client.warden.test"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":"rSRJ7+gp7xUT2MB1EdO3iSYWowM=","URIStrings":["https://user@warden.test:8443/a/b?x=1#frag"],"URIs":[{"ForceQuery":false,"Fragment":"frag","Host":"warden.test:8443","OmitHost":false,"Opaque":"","Path":"/a/b","RawFragment":"","RawPath":"","RawQuery":"x=1","Scheme":"https","User":{}}],"UnhandledCriticalExtensions":[[1,2,3,99]],"UnknownExtKeyUsage":[[1,2,3,4,5]],"Version":3}]"##,
        ),
    ),
    (
        "x509_verify_three_client",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.int_cert, data.fixtures.leaf3_cert]), {"KeyUsages": ["KeyUsageClientAuth"]})"#,
        Some(
            r##"[true,[{"AuthorityKeyId":null,"BasicConstraintsValid":false,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":[2],"Extensions":[{"Critical":false,"Id":[2,5,29,37],"Value":"MAoGCCsGAQUFBwMC"}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"Warden Test Intermediate","Country":null,"ExtraNames":null,"Locality":["Berlin"],"Names":[{"Type":[2,5,4,3],"Value":"Warden Test Intermediate"},{"Type":[2,5,4,7],"Value":"Berlin"},{"Type":[2,5,4,8],"Value":"BE"},{"Type":[2,5,4,17],"Value":"10115"},{"Type":[2,5,4,9],"Value":"Test 1"},{"Type":[2,5,4,5],"Value":"42"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":["10115"],"Province":["BE"],"SerialNumber":"42","StreetAddress":["Test 1"]},"IssuingCertificateURL":null,"KeyUsage":0,"MaxPathLen":0,"MaxPathLenZero":false,"NotAfter":"2120-10-30T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:2585118078754637277366278631419628298165779843139097177378569923445374251240634660942850592088493048852221458652003049256490497522356436919932469303996869615","Y":"#num:1583229062941278892686899689129892709955039605826834106013365955137225052983816966012656694887753024273484617044267171039806822994468700756886414788545962562"},"PublicKeyAlgorithm":3,"Raw":"MIIB9jCCAXygAwIBAgIBDTAKBggqhkjOPQQDAzBvMSEwHwYDVQQDDBhXYXJkZW4gVGVzdCBJbnRlcm1lZGlhdGUxDzANBgNVBAcMBkJlcmxpbjELMAkGA1UECAwCQkUxDjAMBgNVBBEMBTEwMTE1MQ8wDQYDVQQJDAZUZXN0IDExCzAJBgNVBAUTAjQyMCAXDTI1MDEwMTAwMDAwMFoYDzIxMjAxMDMwMDAwMDAwWjAcMRowGAYDVQQDDBFwbGFpbi53YXJkZW4udGVzdDCBmzAQBgcqhkjOPQIBBgUrgQQAIwOBhgAEAMDOkfTUTNGUd4m3puioYNb98D6btfT+tIyOhkxLqSeH6PH4O0tEBjP+jl8/V6yQHHKy/atoPOnkq0ZFBeCBLGvvAHYVJnUyxUUIPu7d3p7o0rLC+517hI7gCq2hcgS5rYRAYKH7Ekxj5smX46oyILvT5UOyuMQMJbsoXdEsTqF3v2JCoxcwFTATBgNVHSUEDDAKBggrBgEFBQcDAjAKBggqhkjOPQQDAwNoADBlAjEAiZ8oe+JnpjY77dVwP4iugjHk6/yllWtjlP/E9TtTEaaQuZRJUDg5/xIFStW6/UNOAjABeaWJoEVncamsxJwUqar77mUYCUwYb9bPv7m0tR1/b2cHaCbC7LP2qDonpJ0uGUo=","RawIssuer":"MG8xITAfBgNVBAMMGFdhcmRlbiBUZXN0IEludGVybWVkaWF0ZTEPMA0GA1UEBwwGQmVybGluMQswCQYDVQQIDAJCRTEOMAwGA1UEEQwFMTAxMTUxDzANBgNVBAkMBlRlc3QgMTELMAkGA1UEBRMCNDI=","RawSubject":"MBwxGjAYBgNVBAMMEXBsYWluLndhcmRlbi50ZXN0","RawSubjectPublicKeyInfo":"MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQAwM6R9NRM0ZR3ibem6Khg1v3wPpu19P60jI6GTEupJ4fo8fg7S0QGM/6OXz9XrJAccrL9q2g86eSrRkUF4IEsa+8AdhUmdTLFRQg+7t3enujSssL7nXuEjuAKraFyBLmthEBgofsSTGPmyZfjqjIgu9PlQ7K4xAwluyhd0SxOoXe/YkI=","RawTBSCertificate":"MIIBfKADAgECAgENMAoGCCqGSM49BAMDMG8xITAfBgNVBAMMGFdhcmRlbiBUZXN0IEludGVybWVkaWF0ZTEPMA0GA1UEBwwGQmVybGluMQswCQYDVQQIDAJCRTEOMAwGA1UEEQwFMTAxMTUxDzANBgNVBAkMBlRlc3QgMTELMAkGA1UEBRMCNDIwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMDEwMzAwMDAwMDBaMBwxGjAYBgNVBAMMEXBsYWluLndhcmRlbi50ZXN0MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQAwM6R9NRM0ZR3ibem6Khg1v3wPpu19P60jI6GTEupJ4fo8fg7S0QGM/6OXz9XrJAccrL9q2g86eSrRkUF4IEsa+8AdhUmdTLFRQg+7t3enujSssL7nXuEjuAKraFyBLmthEBgofsSTGPmyZfjqjIgu9PlQ7K4xAwluyhd0SxOoXe/YkKjFzAVMBMGA1UdJQQMMAoGCCsGAQUFBwMC","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":13,"Signature":"MGUCMQCJnyh74memNjvt1XA/iK6CMeTr/KWVa2OU/8T1O1MRppC5lElQODn/EgVK1br9Q04CMAF5pYmgRWdxqazEnBSpqvvuZRgJTBhv1s+/ubS1HX9vZwdoJsLss/aoOieknS4ZSg==","SignatureAlgorithm":11,"Subject":{"CommonName":"plain.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"plain.warden.test"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3},{"AuthorityKeyId":"sr/Fdtle3HKwm1bE8EosKHBh6D0=","BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":[{"Critical":true,"Id":[2,5,29,19],"Value":"MAYBAf8CAQA="},{"Critical":false,"Id":[2,5,29,14],"Value":"BBRUP6Zyky5LtcMVWY87FUa9RqusMg=="},{"Critical":false,"Id":[2,5,29,35],"Value":"MBaAFLK/xXbZXtxysJtWxPBKLChwYeg9"}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":true,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":0,"MaxPathLen":0,"MaxPathLenZero":true,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:30131518818975977091987384413635264796126902229235337632737499579814506795247871404154291980466573798913287311972235","Y":"#num:35337796982804250735825313175754307395112344819101950051371642454036680826498713337786472147029314271609294262605811"},"PublicKeyAlgorithm":3,"Raw":"MIICFDCCAbqgAwIBAgIBCzAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMG8xITAfBgNVBAMMGFdhcmRlbiBUZXN0IEludGVybWVkaWF0ZTEPMA0GA1UEBwwGQmVybGluMQswCQYDVQQIDAJCRTEOMAwGA1UEEQwFMTAxMTUxDzANBgNVBAkMBlRlc3QgMTELMAkGA1UEBRMCNDIwdjAQBgcqhkjOPQIBBgUrgQQAIgNiAATDxLe0eJVLqK0jOUgEZcL3oINL9E6ZZcZEBHvSrc+VdbzZo/02k7KWR6CQPl6l14vlmCQJ6Sv9e78/San2rKdOYvw/1VecUxCnNZZdpKZKAWKfdNW2RbJ47cwZrgn/l/OjVjBUMBIGA1UdEwEB/wQIMAYBAf8CAQAwHQYDVR0OBBYEFFQ/pnKTLku1wxVZjzsVRr1Gq6wyMB8GA1UdIwQYMBaAFLK/xXbZXtxysJtWxPBKLChwYeg9MAoGCCqGSM49BAMCA0gAMEUCIBoMf+hbKhdI7d3UELD804kOJka16Y6GbCa/E7DKmtTMAiEA1ttBr2vd+HzwLQAnHzOHUbltlGGG0bwp5UEoF/SSG04=","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MG8xITAfBgNVBAMMGFdhcmRlbiBUZXN0IEludGVybWVkaWF0ZTEPMA0GA1UEBwwGQmVybGluMQswCQYDVQQIDAJCRTEOMAwGA1UEEQwFMTAxMTUxDzANBgNVBAkMBlRlc3QgMTELMAkGA1UEBRMCNDI=","RawSubjectPublicKeyInfo":"MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEw8S3tHiVS6itIzlIBGXC96CDS/ROmWXGRAR70q3PlXW82aP9NpOylkegkD5epdeL5ZgkCekr/Xu/P0mp9qynTmL8P9VXnFMQpzWWXaSmSgFin3TVtkWyeO3MGa4J/5fz","RawTBSCertificate":"MIIBuqADAgECAgELMAoGCCqGSM49BAMCMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowbzEhMB8GA1UEAwwYV2FyZGVuIFRlc3QgSW50ZXJtZWRpYXRlMQ8wDQYDVQQHDAZCZXJsaW4xCzAJBgNVBAgMAkJFMQ4wDAYDVQQRDAUxMDExNTEPMA0GA1UECQwGVGVzdCAxMQswCQYDVQQFEwI0MjB2MBAGByqGSM49AgEGBSuBBAAiA2IABMPEt7R4lUuorSM5SARlwvegg0v0TpllxkQEe9Ktz5V1vNmj/TaTspZHoJA+XqXXi+WYJAnpK/17vz9Jqfasp05i/D/VV5xTEKc1ll2kpkoBYp901bZFsnjtzBmuCf+X86NWMFQwEgYDVR0TAQH/BAgwBgEB/wIBADAdBgNVHQ4EFgQUVD+mcpMuS7XDFVmPOxVGvUarrDIwHwYDVR0jBBgwFoAUsr/Fdtle3HKwm1bE8EosKHBh6D0=","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":11,"Signature":"MEUCIBoMf+hbKhdI7d3UELD804kOJka16Y6GbCa/E7DKmtTMAiEA1ttBr2vd+HzwLQAnHzOHUbltlGGG0bwp5UEoF/SSG04=","SignatureAlgorithm":10,"Subject":{"CommonName":"Warden Test Intermediate","Country":null,"ExtraNames":null,"Locality":["Berlin"],"Names":[{"Type":[2,5,4,3],"Value":"Warden Test Intermediate"},{"Type":[2,5,4,7],"Value":"Berlin"},{"Type":[2,5,4,8],"Value":"BE"},{"Type":[2,5,4,17],"Value":"10115"},{"Type":[2,5,4,9],"Value":"Test 1"},{"Type":[2,5,4,5],"Value":"42"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":["10115"],"Province":["BE"],"SerialNumber":"42","StreetAddress":["Test 1"]},"SubjectKeyId":"VD+mcpMuS7XDFVmPOxVGvUarrDI=","URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3},{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":[{"Critical":true,"Id":[2,5,29,19],"Value":"MAMBAf8="},{"Critical":true,"Id":[2,5,29,15],"Value":"AwIBhg=="}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":true,"Issuer":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":97,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2124-12-08T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"},"PublicKeyAlgorithm":3,"Raw":"MIIBmDCCAT2gAwIBAgICEAAwCgYIKoZIzj0EAwIwQTELMAkGA1UEBhMCREUxFzAVBgNVBAoMDldhcmRlbiBUZXN0IENBMRkwFwYDVQQDDBBXYXJkZW4gVGVzdCBSb290MCAXDTI1MDEwMTAwMDAwMFoYDzIxMjQxMjA4MDAwMDAwWjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQjb4YxICOemW7STIx467O0/+pyHm4DwWZDh1FqrnrRlmdylzHpCZ5+7uxBzg1P1yI3G3pZ/BENVUeuFTzcq07+oyMwITAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAKBggqhkjOPQQDAgNJADBGAiEAq23XPPvbZ8fYhpUj3zmXXxccxR5xchI3xt6mslF1kmMCIQChdeVioTjIKihmU5SbIIORkqG/5xhQ4HYIlj8eRShXkQ==","RawIssuer":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubject":"MEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdA==","RawSubjectPublicKeyInfo":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI2+GMSAjnplu0kyMeOuztP/qch5uA8FmQ4dRaq560ZZncpcx6Qmefu7sQc4NT9ciNxt6WfwRDVVHrhU83KtO/g==","RawTBSCertificate":"MIIBPaADAgECAgIQADAKBggqhkjOPQQDAjBBMQswCQYDVQQGEwJERTEXMBUGA1UECgwOV2FyZGVuIFRlc3QgQ0ExGTAXBgNVBAMMEFdhcmRlbiBUZXN0IFJvb3QwIBcNMjUwMTAxMDAwMDAwWhgPMjEyNDEyMDgwMDAwMDBaMEExCzAJBgNVBAYTAkRFMRcwFQYDVQQKDA5XYXJkZW4gVGVzdCBDQTEZMBcGA1UEAwwQV2FyZGVuIFRlc3QgUm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCNvhjEgI56ZbtJMjHjrs7T/6nIebgPBZkOHUWquetGWZ3KXMekJnn7u7EHODU/XIjcbeln8EQ1VR64VPNyrTv6jIzAhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGG","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":4096,"Signature":"MEYCIQCrbdc8+9tnx9iGlSPfOZdfFxzFHnFyEjfG3qayUXWSYwIhAKF15WKhOMgqKGZTlJsgg5GSob/nGFDgdgiWPx5FKFeR","SignatureAlgorithm":10,"Subject":{"CommonName":"Warden Test Root","Country":["DE"],"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,6],"Value":"DE"},{"Type":[2,5,4,10],"Value":"Warden Test CA"},{"Type":[2,5,4,3],"Value":"Warden Test Root"}],"Organization":["Warden Test CA"],"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]]"##,
        ),
    ),
    (
        "x509_verify_three_default",
        r#"crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.ca_cert, data.fixtures.int_cert, data.fixtures.leaf3_cert]))"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_verify_three_unhandled_critical",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.int_cert, data.fixtures.leaf2_cert]), {"KeyUsages": ["KeyUsageClientAuth"]})"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_verify_missing_intermediate",
        r#"crypto.x509.parse_and_verify_certificates_with_options(concat("", [data.fixtures.ca_cert, data.fixtures.leaf3_cert]), {"KeyUsages": ["KeyUsageAny"]})"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_parse_constrained_ca",
        r#"crypto.x509.parse_certificates(data.fixtures.nc_ca_cert)"#,
        Some(
            r#"[{"AuthorityKeyId":null,"BasicConstraintsValid":true,"CRLDistributionPoints":null,"DNSNames":null,"EmailAddresses":null,"ExcludedDNSDomains":["bad.warden.test"],"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":[{"Critical":true,"Id":[2,5,29,19],"Value":"MAMBAf8="},{"Critical":true,"Id":[2,5,29,30],"Value":"MDKgGzANggt3YXJkZW4udGVzdDAKhwgKAAAA/wAAAKETMBGCD2JhZC53YXJkZW4udGVzdA=="}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":true,"Issuer":{"CommonName":"Warden Constrained CA","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"Warden Constrained CA"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":0,"MaxPathLen":-1,"MaxPathLenZero":false,"NotAfter":"2123-07-27T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":["warden.test"],"PermittedDNSDomainsCritical":true,"PermittedEmailAddresses":null,"PermittedIPRanges":[{"IP":"10.0.0.0","Mask":"/wAAAA=="}],"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":"BpCpjimL6iaRfygpgzIEnmW0t+4h7wjZANLWoz6JTyg=","PublicKeyAlgorithm":4,"Raw":"MIIBQzCB9qADAgECAgEVMAUGAytlcDAgMR4wHAYDVQQDDBVXYXJkZW4gQ29uc3RyYWluZWQgQ0EwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMzA3MjcwMDAwMDBaMCAxHjAcBgNVBAMMFVdhcmRlbiBDb25zdHJhaW5lZCBDQTAqMAUGAytlcAMhAAaQqY4pi+omkX8oKYMyBJ5ltLfuIe8I2QDS1qM+iU8oo1MwUTAPBgNVHRMBAf8EBTADAQH/MD4GA1UdHgEB/wQ0MDKgGzANggt3YXJkZW4udGVzdDAKhwgKAAAA/wAAAKETMBGCD2JhZC53YXJkZW4udGVzdDAFBgMrZXADQQA9r9oB+MR01HgGP11E95IMj8/aikx8kcelo2Gsr/uGk6uPzIA/14HOrNBHMYOBU3B1oj6nlG4fDHOy7hXUwYYD","RawIssuer":"MCAxHjAcBgNVBAMMFVdhcmRlbiBDb25zdHJhaW5lZCBDQQ==","RawSubject":"MCAxHjAcBgNVBAMMFVdhcmRlbiBDb25zdHJhaW5lZCBDQQ==","RawSubjectPublicKeyInfo":"MCowBQYDK2VwAyEABpCpjimL6iaRfygpgzIEnmW0t+4h7wjZANLWoz6JTyg=","RawTBSCertificate":"MIH2oAMCAQICARUwBQYDK2VwMCAxHjAcBgNVBAMMFVdhcmRlbiBDb25zdHJhaW5lZCBDQTAgFw0yNTAxMDEwMDAwMDBaGA8yMTIzMDcyNzAwMDAwMFowIDEeMBwGA1UEAwwVV2FyZGVuIENvbnN0cmFpbmVkIENBMCowBQYDK2VwAyEABpCpjimL6iaRfygpgzIEnmW0t+4h7wjZANLWoz6JTyijUzBRMA8GA1UdEwEB/wQFMAMBAf8wPgYDVR0eAQH/BDQwMqAbMA2CC3dhcmRlbi50ZXN0MAqHCAoAAAD/AAAAoRMwEYIPYmFkLndhcmRlbi50ZXN0","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":21,"Signature":"Pa/aAfjEdNR4Bj9dRPeSDI/P2opMfJHHpaNhrK/7hpOrj8yAP9eBzqzQRzGDgVNwdaI+p5RuHwxzsu4V1MGGAw==","SignatureAlgorithm":16,"Subject":{"CommonName":"Warden Constrained CA","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"Warden Constrained CA"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]"#,
        ),
    ),
    (
        "x509_verify_constrained_ok",
        r#"crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.nc_ca_cert, data.fixtures.nc_ok_cert]))[0]"#,
        Some(r#"true"#),
    ),
    (
        "x509_verify_constrained_outside",
        r#"crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.nc_ca_cert, data.fixtures.nc_out_cert]))"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_verify_constrained_excluded",
        r#"crypto.x509.parse_and_verify_certificates(concat("", [data.fixtures.nc_ca_cert, data.fixtures.nc_excl_cert]))"#,
        Some(r#"[false,[]]"#),
    ),
    (
        "x509_parse_ed25519_signed",
        r#"crypto.x509.parse_certificates(data.fixtures.nc_ok_cert)"#,
        Some(
            r##"[{"AuthorityKeyId":null,"BasicConstraintsValid":false,"CRLDistributionPoints":null,"DNSNames":["api.warden.test"],"EmailAddresses":null,"ExcludedDNSDomains":null,"ExcludedEmailAddresses":null,"ExcludedIPRanges":null,"ExcludedURIDomains":null,"ExtKeyUsage":null,"Extensions":[{"Critical":false,"Id":[2,5,29,17],"Value":"MBGCD2FwaS53YXJkZW4udGVzdA=="}],"ExtraExtensions":null,"IPAddresses":null,"InhibitAnyPolicy":0,"InhibitAnyPolicyZero":false,"InhibitPolicyMapping":0,"InhibitPolicyMappingZero":false,"IsCA":false,"Issuer":{"CommonName":"Warden Constrained CA","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"Warden Constrained CA"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"IssuingCertificateURL":null,"KeyUsage":0,"MaxPathLen":0,"MaxPathLenZero":false,"NotAfter":"2120-10-30T00:00:00Z","NotBefore":"2025-01-01T00:00:00Z","OCSPServer":null,"PermittedDNSDomains":null,"PermittedDNSDomainsCritical":false,"PermittedEmailAddresses":null,"PermittedIPRanges":null,"PermittedURIDomains":null,"Policies":null,"PolicyIdentifiers":null,"PolicyMappings":null,"PublicKey":{"Curve":{},"X":"#num:16027995883037227237174241583210473146215763104087312756618976810167764177302","Y":"#num:46790687478738646918550117744265628724580324687019276106866817964434984226558"},"PublicKeyAlgorithm":3,"Raw":"MIIBNzCB6qADAgECAgEWMAUGAytlcDAgMR4wHAYDVQQDDBVXYXJkZW4gQ29uc3RyYWluZWQgQ0EwIBcNMjUwMTAxMDAwMDAwWhgPMjEyMDEwMzAwMDAwMDBaMBoxGDAWBgNVBAMMD2FwaS53YXJkZW4udGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCNvhjEgI56ZbtJMjHjrs7T/6nIebgPBZkOHUWquetGWZ3KXMekJnn7u7EHODU/XIjcbeln8EQ1VR64VPNyrTv6jHjAcMBoGA1UdEQQTMBGCD2FwaS53YXJkZW4udGVzdDAFBgMrZXADQQDfN3M5z8DaJMeRbsqaksBv7+pW4647ckc8kxGahFOWRfrY1wU+7JMG4q1N36BDT/T6AJ0PCOkKzEhCm8FbG7oB","RawIssuer":"MCAxHjAcBgNVBAMMFVdhcmRlbiBDb25zdHJhaW5lZCBDQQ==","RawSubject":"MBoxGDAWBgNVBAMMD2FwaS53YXJkZW4udGVzdA==","RawSubjectPublicKeyInfo":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI2+GMSAjnplu0kyMeOuztP/qch5uA8FmQ4dRaq560ZZncpcx6Qmefu7sQc4NT9ciNxt6WfwRDVVHrhU83KtO/g==","RawTBSCertificate":"MIHqoAMCAQICARYwBQYDK2VwMCAxHjAcBgNVBAMMFVdhcmRlbiBDb25zdHJhaW5lZCBDQTAgFw0yNTAxMDEwMDAwMDBaGA8yMTIwMTAzMDAwMDAwMFowGjEYMBYGA1UEAwwPYXBpLndhcmRlbi50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI2+GMSAjnplu0kyMeOuztP/qch5uA8FmQ4dRaq560ZZncpcx6Qmefu7sQc4NT9ciNxt6WfwRDVVHrhU83KtO/qMeMBwwGgYDVR0RBBMwEYIPYXBpLndhcmRlbi50ZXN0","RequireExplicitPolicy":0,"RequireExplicitPolicyZero":false,"SerialNumber":22,"Signature":"3zdzOc/A2iTHkW7KmpLAb+/qVuOuO3JHPJMRmoRTlkX62NcFPuyTBuKtTd+gQ0/0+gCdDwjpCsxIQpvBWxu6AQ==","SignatureAlgorithm":16,"Subject":{"CommonName":"api.warden.test","Country":null,"ExtraNames":null,"Locality":null,"Names":[{"Type":[2,5,4,3],"Value":"api.warden.test"}],"Organization":null,"OrganizationalUnit":null,"PostalCode":null,"Province":null,"SerialNumber":"","StreetAddress":null},"SubjectKeyId":null,"URIStrings":null,"URIs":null,"UnhandledCriticalExtensions":null,"UnknownExtKeyUsage":null,"Version":3}]"##,
        ),
    ),
];
