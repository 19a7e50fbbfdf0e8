//! OPA's `crypto.x509.*` and `crypto.parse_private_keys` builtins.

use super::Builtin;

pub(crate) const BUILTINS: &[(&str, u8, Builtin)] = &[];
