package compat.json_errors

unmarshal_invalid := json.unmarshal(`{"a": }`)
unmarshal_trailing := json.unmarshal(`{} x`)
