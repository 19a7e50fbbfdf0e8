//! OPA's `crypto.x509.*` builtins and `crypto.parse_private_keys`.
//!
//! OPA answers with Go's JSON encoding of `x509.Certificate` and
//! `x509.CertificateRequest`; the objects here carry the same field names
//! and encodings (byte strings as standard base64, big integers as numbers,
//! times as RFC 3339, OIDs as arrays of integers, absent lists as null).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use regorus::Value;
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use x509_cert::Certificate;
use x509_cert::der::asn1::{BitString, ObjectIdentifier, OctetString};
use x509_cert::der::{Decode as _, Encode as _, Reader as _, SliceReader, Tagged as _};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlDistributionPoints,
    ExtendedKeyUsage, NameConstraints, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::keys::{self, Key};
use super::{Answer, Builtin, str_arg};

/// Inputs with more certificates than this are refused.
const MAX_CERTS: usize = 64;

pub(crate) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("crypto.x509.parse_certificates", 1, parse_certificates),
    (
        "crypto.x509.parse_and_verify_certificates",
        1,
        parse_and_verify_certificates,
    ),
    (
        "crypto.x509.parse_and_verify_certificates_with_options",
        2,
        parse_and_verify_certificates_with_options,
    ),
    ("crypto.x509.parse_certificate_request", 1, parse_certificate_request),
    ("crypto.x509.parse_rsa_private_key", 1, parse_rsa_private_key),
    ("crypto.x509.parse_keypair", 2, parse_keypair),
    ("crypto.parse_private_keys", 1, parse_private_keys),
];

fn b64(bytes: &[u8]) -> Value {
    Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn b64_or_null(bytes: Option<&[u8]>) -> Value {
    bytes.map(b64).unwrap_or(Value::Null)
}

fn big(bytes: &[u8]) -> Value {
    let n = rsa::BigUint::from_bytes_be(bytes);
    Value::from_numeric_string(&n.to_string()).unwrap_or(Value::Null)
}

fn obj(fields: Vec<(&str, Value)>) -> Value {
    let map: BTreeMap<Value, Value> = fields.into_iter().map(|(k, v)| (Value::from(k), v)).collect();
    Value::from(map)
}

fn list_or_null(items: Vec<Value>) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::from(items)
    }
}

fn strings_or_null(items: &[String]) -> Value {
    list_or_null(items.iter().map(|s| Value::from(s.as_str())).collect())
}

fn oid_value(oid: &ObjectIdentifier) -> Value {
    Value::from(oid.arcs().map(|a| Value::from(u64::from(a))).collect::<Vec<_>>())
}

/// Go's `time.Time` in JSON: RFC 3339.
fn time_value(t: &x509_cert::time::Time) -> Value {
    let secs = t.to_unix_duration().as_secs();
    match i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
    {
        Some(dt) => Value::from(dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => Value::Null,
    }
}

/// A directory string attribute value as text, when it is one.
fn attr_text(any: &x509_cert::der::Any) -> Option<String> {
    use x509_cert::der::Tag;
    let bytes = any.value();
    match any.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8(bytes.to_vec()).ok()
        }
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// Go's `pkix.Name` in JSON.
fn name_value(name: &x509_cert::name::Name) -> Value {
    let mut names = Vec::new();
    let mut lists: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut common_name = String::new();
    let mut serial = String::new();
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            let Some(text) = attr_text(&atv.value) else {
                continue;
            };
            names.push(obj(vec![
                ("Type", oid_value(&atv.oid)),
                ("Value", Value::from(text.as_str())),
            ]));
            let oid = atv.oid.to_string();
            let field = match oid.as_str() {
                "2.5.4.3" => {
                    common_name = text;
                    continue;
                }
                "2.5.4.5" => {
                    serial = text;
                    continue;
                }
                "2.5.4.6" => "Country",
                "2.5.4.7" => "Locality",
                "2.5.4.8" => "Province",
                "2.5.4.9" => "StreetAddress",
                "2.5.4.10" => "Organization",
                "2.5.4.11" => "OrganizationalUnit",
                "2.5.4.17" => "PostalCode",
                _ => continue,
            };
            lists.entry(field).or_default().push(text);
        }
    }
    let list = |f: &str| strings_or_null(lists.get(f).map(Vec::as_slice).unwrap_or(&[]));
    obj(vec![
        ("CommonName", Value::from(common_name)),
        ("Country", list("Country")),
        ("ExtraNames", Value::Null),
        ("Locality", list("Locality")),
        ("Names", Value::from(names)),
        ("Organization", list("Organization")),
        ("OrganizationalUnit", list("OrganizationalUnit")),
        ("PostalCode", list("PostalCode")),
        ("Province", list("Province")),
        ("SerialNumber", Value::from(serial)),
        ("StreetAddress", list("StreetAddress")),
    ])
}

/// Go's `x509.SignatureAlgorithm` number for a signature algorithm OID.
fn signature_algorithm(oid: &str) -> i64 {
    match oid {
        "1.2.840.113549.1.1.2" => 1,
        "1.2.840.113549.1.1.4" => 2,
        "1.2.840.113549.1.1.5" => 3,
        "1.2.840.113549.1.1.11" => 4,
        "1.2.840.113549.1.1.12" => 5,
        "1.2.840.113549.1.1.13" => 6,
        "1.2.840.10040.4.3" => 7,
        "2.16.840.1.101.3.4.3.2" => 8,
        "1.2.840.10045.4.1" => 9,
        "1.2.840.10045.4.3.2" => 10,
        "1.2.840.10045.4.3.3" => 11,
        "1.2.840.10045.4.3.4" => 12,
        "1.3.101.112" => 16,
        _ => 0,
    }
}

/// Go's `PublicKeyAlgorithm` and `PublicKey` in JSON.
fn public_key_value(spki: &SubjectPublicKeyInfoOwned) -> (i64, Value) {
    let der = spki.to_der().unwrap_or_default();
    match keys::parse_spki(&der) {
        Ok(Key::Rsa(k)) => (
            1,
            obj(vec![("E", big(&k.e().to_bytes_be())), ("N", big(&k.n().to_bytes_be()))]),
        ),
        Ok(Key::P256(k)) => (3, ec_point_value(k.to_encoded_point(false).as_bytes())),
        Ok(Key::P384(k)) => (3, ec_point_value(k.to_encoded_point(false).as_bytes())),
        Ok(Key::P521(k)) => (
            3,
            ec_point_value(p521::EncodedPoint::from(p521::ecdsa::VerifyingKey::as_affine(&k).to_owned()).as_bytes()),
        ),
        Ok(Key::Ed25519(k)) => (4, b64(k.as_bytes())),
        _ => (0, Value::Null),
    }
}

fn ec_point_value(sec1: &[u8]) -> Value {
    let coords = sec1.get(1..).unwrap_or(&[]);
    let half = coords.len() / 2;
    obj(vec![
        ("Curve", Value::new_object()),
        ("X", big(&coords[..half])),
        ("Y", big(&coords[half..])),
    ])
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => {
            let b: [u8; 4] = bytes.try_into().ok()?;
            Some(Ipv4Addr::from(b).to_string())
        }
        16 => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            let v6 = Ipv6Addr::from(b);
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4).to_string(),
                None => v6.to_string(),
            })
        }
        _ => None,
    }
}

/// Go's `url.URL` in JSON, for the URIs of a certificate.
fn url_value(s: &str) -> Value {
    let (mut scheme, mut opaque, mut host, mut path) = (String::new(), "", "", "");
    let (mut rest, mut fragment, mut query) = (s, "", "");
    if let Some(i) = rest.find('#') {
        fragment = &rest[i + 1..];
        rest = &rest[..i];
    }
    if let Some(i) = rest.find('?') {
        query = &rest[i + 1..];
        rest = &rest[..i];
    }
    if let Some(i) = rest.find(':')
        && i > 0
        && rest[..i]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        scheme = rest[..i].to_ascii_lowercase();
        rest = &rest[i + 1..];
    }
    let mut user = Value::Null;
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        host = &after[..end];
        path = &after[end..];
        // Go's `*url.Userinfo` has no exported fields: it encodes as {}.
        if let Some(at) = host.rfind('@') {
            host = &host[at + 1..];
            user = Value::new_object();
        }
    } else if !scheme.is_empty() && !rest.starts_with('/') {
        opaque = rest;
    } else {
        path = rest;
    }
    obj(vec![
        ("ForceQuery", Value::from(false)),
        ("Fragment", Value::from(fragment)),
        ("Host", Value::from(host)),
        ("OmitHost", Value::from(false)),
        ("Opaque", Value::from(opaque)),
        ("Path", Value::from(path)),
        ("RawFragment", Value::from("")),
        ("RawPath", Value::from("")),
        ("RawQuery", Value::from(query)),
        ("Scheme", Value::from(scheme)),
        ("User", user),
    ])
}

/// What the extensions of a certificate (or request) say.
#[derive(Default)]
struct Extensions {
    list: Vec<Value>,
    dns: Vec<String>,
    emails: Vec<String>,
    ips: Vec<String>,
    uris: Vec<String>,
    key_usage: i64,
    ext_key_usage: Vec<i64>,
    unknown_ext_key_usage: Vec<Value>,
    has_eku: bool,
    basic_constraints_valid: bool,
    is_ca: bool,
    max_path_len: i64,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    crl: Vec<String>,
    ocsp: Vec<String>,
    issuing_url: Vec<String>,
    policies: Vec<ObjectIdentifier>,
    unhandled_critical: Vec<Value>,
    constraints: NameRules,
}

/// The subtrees of a name constraints extension, per name type.
#[derive(Default)]
struct NameRules {
    critical: bool,
    permitted_dns: Vec<String>,
    excluded_dns: Vec<String>,
    permitted_email: Vec<String>,
    excluded_email: Vec<String>,
    permitted_uri: Vec<String>,
    excluded_uri: Vec<String>,
    permitted_ip: Vec<Value>,
    excluded_ip: Vec<Value>,
}

impl NameRules {
    fn read(&mut self, value: &[u8], critical: bool) -> anyhow::Result<()> {
        let nc = NameConstraints::from_der(value)?;
        self.critical = critical;
        for (subtrees, permitted) in [(nc.permitted_subtrees, true), (nc.excluded_subtrees, false)] {
            for subtree in subtrees.unwrap_or_default() {
                let (dns, email, uri, ip) = if permitted {
                    (
                        &mut self.permitted_dns,
                        &mut self.permitted_email,
                        &mut self.permitted_uri,
                        &mut self.permitted_ip,
                    )
                } else {
                    (
                        &mut self.excluded_dns,
                        &mut self.excluded_email,
                        &mut self.excluded_uri,
                        &mut self.excluded_ip,
                    )
                };
                match subtree.base {
                    GeneralName::DnsName(d) => dns.push(d.to_string()),
                    GeneralName::Rfc822Name(m) => email.push(m.to_string()),
                    GeneralName::UniformResourceIdentifier(u) => uri.push(u.to_string()),
                    GeneralName::IpAddress(net) => {
                        let b = net.as_bytes();
                        let half = b.len() / 2;
                        let ip_text =
                            ip_text(&b[..half]).ok_or_else(|| anyhow::anyhow!("invalid IP name constraint"))?;
                        ip.push(obj(vec![("IP", Value::from(ip_text)), ("Mask", b64(&b[half..]))]));
                    }
                    _ => anyhow::bail!("unsupported name constraint"),
                }
            }
        }
        Ok(())
    }

    /// Whether the names of a certificate below satisfy these rules. DNS
    /// names are checked as Go checks them; any constraint on e-mail, URI
    /// or IP names, when the certificate carries such names, fails closed.
    fn allow(&self, e: &Extensions) -> bool {
        let dns_ok = e.dns.iter().all(|name| {
            (self.permitted_dns.is_empty() || self.permitted_dns.iter().any(|c| dns_constraint_matches(c, name)))
                && !self.excluded_dns.iter().any(|c| dns_constraint_matches(c, name))
        });
        let other = |has: bool, p: usize, x: usize| !has || (p == 0 && x == 0);
        dns_ok
            && other(
                !e.emails.is_empty(),
                self.permitted_email.len(),
                self.excluded_email.len(),
            )
            && other(!e.uris.is_empty(), self.permitted_uri.len(), self.excluded_uri.len())
            && other(!e.ips.is_empty(), self.permitted_ip.len(), self.excluded_ip.len())
    }
}

/// Go's `matchDomainConstraint`: "example.com" covers itself and its
/// subdomains, ".example.com" only its subdomains.
fn dns_constraint_matches(constraint: &str, name: &str) -> bool {
    let c = constraint.to_ascii_lowercase();
    let n = name.to_ascii_lowercase();
    if c.is_empty() {
        return true;
    }
    if let Some(sub) = c.strip_prefix('.') {
        return n.ends_with(&format!(".{sub}"));
    }
    n == c || n.ends_with(&format!(".{c}"))
}

/// Go's `x509.ExtKeyUsage` number for an extended key usage OID.
fn ext_key_usage(oid: &str) -> Option<i64> {
    Some(match oid {
        "2.5.29.37.0" => 0,
        "1.3.6.1.5.5.7.3.1" => 1,
        "1.3.6.1.5.5.7.3.2" => 2,
        "1.3.6.1.5.5.7.3.3" => 3,
        "1.3.6.1.5.5.7.3.4" => 4,
        "1.3.6.1.5.5.7.3.5" => 5,
        "1.3.6.1.5.5.7.3.6" => 6,
        "1.3.6.1.5.5.7.3.7" => 7,
        "1.3.6.1.5.5.7.3.8" => 8,
        "1.3.6.1.5.5.7.3.9" => 9,
        "1.3.6.1.4.1.311.10.3.3" => 10,
        "2.16.840.1.113730.4.1" => 11,
        "1.3.6.1.4.1.311.2.1.22" => 12,
        "1.3.6.1.4.1.311.61.1.1" => 13,
        _ => return None,
    })
}

fn general_name_uri(name: &GeneralName) -> Option<String> {
    match name {
        GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
        _ => None,
    }
}

impl Extensions {
    fn read(exts: &[x509_cert::ext::Extension]) -> anyhow::Result<Self> {
        let mut e = Extensions::default();
        for ext in exts {
            let value = ext.extn_value.as_bytes();
            e.list.push(obj(vec![
                ("Critical", Value::from(ext.critical)),
                ("Id", oid_value(&ext.extn_id)),
                ("Value", b64(value)),
            ]));
            match ext.extn_id.to_string().as_str() {
                "2.5.29.17" => {
                    for name in SubjectAltName::from_der(value)?.0 {
                        match name {
                            GeneralName::DnsName(s) => e.dns.push(s.to_string()),
                            GeneralName::Rfc822Name(s) => e.emails.push(s.to_string()),
                            GeneralName::UniformResourceIdentifier(s) => e.uris.push(s.to_string()),
                            GeneralName::IpAddress(ip) => match ip_text(ip.as_bytes()) {
                                Some(t) => e.ips.push(t),
                                None => anyhow::bail!("invalid IP address in SAN"),
                            },
                            _ => {}
                        }
                    }
                }
                "2.5.29.15" => {
                    let bits = BitString::from_der(value)?;
                    let raw = bits.raw_bytes();
                    for i in 0..9usize {
                        if raw.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0) {
                            e.key_usage |= 1 << i;
                        }
                    }
                }
                "2.5.29.37" => {
                    e.has_eku = true;
                    for oid in ExtendedKeyUsage::from_der(value)?.0 {
                        match ext_key_usage(&oid.to_string()) {
                            Some(n) => e.ext_key_usage.push(n),
                            None => e.unknown_ext_key_usage.push(oid_value(&oid)),
                        }
                    }
                }
                "2.5.29.19" => {
                    let bc = BasicConstraints::from_der(value)?;
                    e.basic_constraints_valid = true;
                    e.is_ca = bc.ca;
                    e.max_path_len = bc.path_len_constraint.map(i64::from).unwrap_or(-1);
                }
                "2.5.29.14" => {
                    e.subject_key_id = Some(SubjectKeyIdentifier::from_der(value)?.0.into_bytes());
                }
                "2.5.29.35" => {
                    let akid = AuthorityKeyIdentifier::from_der(value)?;
                    e.authority_key_id = akid.key_identifier.map(OctetString::into_bytes);
                }
                "2.5.29.31" => {
                    for dp in CrlDistributionPoints::from_der(value)?.0 {
                        if let Some(DistributionPointName::FullName(names)) = dp.distribution_point {
                            e.crl.extend(names.iter().filter_map(general_name_uri));
                        }
                    }
                }
                "1.3.6.1.5.5.7.1.1" => {
                    for ad in AuthorityInfoAccessSyntax::from_der(value)?.0 {
                        let Some(uri) = general_name_uri(&ad.access_location) else {
                            continue;
                        };
                        match ad.access_method.to_string().as_str() {
                            "1.3.6.1.5.5.7.48.1" => e.ocsp.push(uri),
                            "1.3.6.1.5.5.7.48.2" => e.issuing_url.push(uri),
                            _ => {}
                        }
                    }
                }
                "2.5.29.32" => {
                    e.policies = CertificatePolicies::from_der(value)?
                        .0
                        .into_iter()
                        .map(|p| p.policy_identifier)
                        .collect();
                }
                "2.5.29.30" => {
                    if e.constraints.read(value, ext.critical).is_err() && ext.critical {
                        e.unhandled_critical.push(oid_value(&ext.extn_id));
                    }
                }
                "2.5.29.36" | "2.5.29.33" | "2.5.29.54" => {}
                _ => {
                    if ext.critical {
                        e.unhandled_critical.push(oid_value(&ext.extn_id));
                    }
                }
            }
        }
        Ok(e)
    }
}

/// One parsed certificate, with its DER.
struct Parsed {
    der: Vec<u8>,
    cert: Certificate,
}

/// Go's `x509.Certificate` in JSON (plus OPA's `URIStrings` when
/// `uri_strings`).
fn certificate_value(p: &Parsed, uri_strings: bool) -> anyhow::Result<Value> {
    let tbs = &p.cert.tbs_certificate;
    let e = Extensions::read(tbs.extensions.as_deref().unwrap_or(&[]))?;
    let (pk_alg, pk) = public_key_value(&tbs.subject_public_key_info);
    let uris: Vec<Value> = e.uris.iter().map(|u| url_value(u)).collect();
    let version = match tbs.version {
        x509_cert::Version::V1 => 1,
        x509_cert::Version::V2 => 2,
        x509_cert::Version::V3 => 3,
    };
    let mut fields = vec![
        ("AuthorityKeyId", b64_or_null(e.authority_key_id.as_deref())),
        ("BasicConstraintsValid", Value::from(e.basic_constraints_valid)),
        ("CRLDistributionPoints", strings_or_null(&e.crl)),
        ("DNSNames", strings_or_null(&e.dns)),
        ("EmailAddresses", strings_or_null(&e.emails)),
        ("ExcludedDNSDomains", strings_or_null(&e.constraints.excluded_dns)),
        ("ExcludedEmailAddresses", strings_or_null(&e.constraints.excluded_email)),
        ("ExcludedIPRanges", list_or_null(e.constraints.excluded_ip.clone())),
        ("ExcludedURIDomains", strings_or_null(&e.constraints.excluded_uri)),
        (
            "ExtKeyUsage",
            if e.has_eku {
                list_or_null(e.ext_key_usage.iter().map(|&n| Value::from(n)).collect())
            } else {
                Value::Null
            },
        ),
        ("Extensions", list_or_null(e.list.clone())),
        ("ExtraExtensions", Value::Null),
        ("IPAddresses", strings_or_null(&e.ips)),
        ("InhibitAnyPolicy", Value::from(0i64)),
        ("InhibitAnyPolicyZero", Value::from(false)),
        ("InhibitPolicyMapping", Value::from(0i64)),
        ("InhibitPolicyMappingZero", Value::from(false)),
        ("IsCA", Value::from(e.is_ca)),
        ("Issuer", name_value(&tbs.issuer)),
        ("IssuingCertificateURL", strings_or_null(&e.issuing_url)),
        ("KeyUsage", Value::from(e.key_usage)),
        ("MaxPathLen", Value::from(e.max_path_len)),
        (
            "MaxPathLenZero",
            Value::from(e.basic_constraints_valid && e.max_path_len == 0),
        ),
        ("NotAfter", time_value(&tbs.validity.not_after)),
        ("NotBefore", time_value(&tbs.validity.not_before)),
        ("OCSPServer", strings_or_null(&e.ocsp)),
        ("PermittedDNSDomains", strings_or_null(&e.constraints.permitted_dns)),
        ("PermittedDNSDomainsCritical", Value::from(e.constraints.critical)),
        (
            "PermittedEmailAddresses",
            strings_or_null(&e.constraints.permitted_email),
        ),
        ("PermittedIPRanges", list_or_null(e.constraints.permitted_ip.clone())),
        ("PermittedURIDomains", strings_or_null(&e.constraints.permitted_uri)),
        (
            "Policies",
            list_or_null(e.policies.iter().map(|o| Value::from(o.to_string())).collect()),
        ),
        (
            "PolicyIdentifiers",
            list_or_null(e.policies.iter().map(oid_value).collect()),
        ),
        ("PolicyMappings", Value::Null),
        ("PublicKey", pk),
        ("PublicKeyAlgorithm", Value::from(pk_alg)),
        ("Raw", b64(&p.der)),
        ("RawIssuer", b64(&tbs.issuer.to_der()?)),
        ("RawSubject", b64(&tbs.subject.to_der()?)),
        ("RawSubjectPublicKeyInfo", b64(&tbs.subject_public_key_info.to_der()?)),
        ("RawTBSCertificate", b64(&tbs.to_der()?)),
        ("RequireExplicitPolicy", Value::from(0i64)),
        ("RequireExplicitPolicyZero", Value::from(false)),
        ("SerialNumber", big(tbs.serial_number.as_bytes())),
        ("Signature", b64(p.cert.signature.raw_bytes())),
        (
            "SignatureAlgorithm",
            Value::from(signature_algorithm(&p.cert.signature_algorithm.oid.to_string())),
        ),
        ("Subject", name_value(&tbs.subject)),
        ("SubjectKeyId", b64_or_null(e.subject_key_id.as_deref())),
        ("URIs", list_or_null(uris)),
        (
            "UnhandledCriticalExtensions",
            list_or_null(e.unhandled_critical.clone()),
        ),
        ("UnknownExtKeyUsage", list_or_null(e.unknown_ext_key_usage.clone())),
        ("Version", Value::from(version)),
    ];
    if uri_strings {
        fields.push(("URIStrings", strings_or_null(&e.uris)));
    }
    Ok(obj(fields))
}

/// DER certificates one after another (Go's `x509.ParseCertificates`).
fn parse_der_certs(mut der: &[u8]) -> anyhow::Result<Vec<Parsed>> {
    let mut out = Vec::new();
    while !der.is_empty() {
        if out.len() >= MAX_CERTS {
            anyhow::bail!("more than {MAX_CERTS} certificates");
        }
        let mut reader = SliceReader::new(der)?;
        let cert: Certificate = x509_cert::der::Decode::decode(&mut reader)?;
        let used = usize::try_from(reader.position())?;
        out.push(Parsed {
            der: der[..used].to_vec(),
            cert,
        });
        der = &der[used..];
    }
    Ok(out)
}

fn parse_pem_certs(mut text: &str) -> anyhow::Result<Vec<Parsed>> {
    let mut der = Vec::new();
    while let Some((block, rest)) = keys::pem_decode(text) {
        if block.label != "CERTIFICATE" {
            anyhow::bail!("PEM block type is '{}', expected CERTIFICATE", block.label);
        }
        der.extend_from_slice(&block.der);
        text = rest;
    }
    parse_der_certs(&der)
}

/// The certificates in `input`: PEM, or base64 of PEM or of DER.
fn certs_from_string(input: &str) -> anyhow::Result<Vec<Parsed>> {
    if input.starts_with("-----BEGIN") {
        return parse_pem_certs(input);
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(input.as_bytes())?;
    if raw.starts_with(b"-----BEGIN") {
        return parse_pem_certs(std::str::from_utf8(&raw)?);
    }
    parse_der_certs(&raw)
}

/// `crypto.x509.parse_certificates(certs)`: the certificates in `certs`
/// (PEM, or base64-encoded PEM or DER), each as Go's `x509.Certificate`
/// JSON with OPA's added `URIStrings`.
fn parse_certificates(args: &[Value]) -> Answer {
    let certs = certs_from_string(str_arg(args, 0)?)?;
    let values = certs
        .iter()
        .map(|c| certificate_value(c, true))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Value::from(values))
}

/// Options of `parse_and_verify_certificates_with_options`.
struct VerifyOptions {
    dns_name: String,
    now: Option<i64>,
    key_usages: Vec<i64>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            dns_name: String::new(),
            now: None,
            // Go's default: a server certificate.
            key_usages: vec![1],
        }
    }
}

fn key_usage_option(name: &str) -> Option<i64> {
    Some(match name {
        "KeyUsageAny" => 0,
        "KeyUsageServerAuth" => 1,
        "KeyUsageClientAuth" => 2,
        "KeyUsageCodeSigning" => 3,
        "KeyUsageEmailProtection" => 4,
        "KeyUsageIPSECEndSystem" => 5,
        "KeyUsageIPSECTunnel" => 6,
        "KeyUsageIPSECUser" => 7,
        "KeyUsageTimeStamping" => 8,
        "KeyUsageOCSPSigning" => 9,
        "KeyUsageMicrosoftServerGatedCrypto" => 10,
        "KeyUsageNetscapeServerGatedCrypto" => 11,
        "KeyUsageMicrosoftCommercialCodeSigning" => 12,
        "KeyUsageMicrosoftKernelCodeSigning" => 13,
        _ => return None,
    })
}

fn verify_options(v: &Value) -> anyhow::Result<VerifyOptions> {
    let Value::Object(fields) = v else {
        anyhow::bail!("operand 2 must be object");
    };
    let mut o = VerifyOptions::default();
    for (k, v) in fields.iter() {
        let Value::String(k) = k else { continue };
        match k.as_ref() {
            "DNSName" => o.dns_name = keys::value_str(v, "'DNSName'")?.trim_matches('"').to_string(),
            "CurrentTime" => {
                let Value::Number(n) = v else {
                    anyhow::bail!("'CurrentTime' should be a number");
                };
                o.now = Some(
                    n.as_i64()
                        .ok_or_else(|| anyhow::anyhow!("'CurrentTime' should be a valid int64"))?,
                );
            }
            "MaxConstraintComparisons" => {
                let Value::Number(n) = v else {
                    anyhow::bail!("'MaxConstraintComparisons' should be a number");
                };
                n.as_i64()
                    .ok_or_else(|| anyhow::anyhow!("'MaxConstraintComparisons' should be a valid number"))?;
            }
            "KeyUsages" => {
                let items: Vec<&Value> = match v {
                    Value::Array(a) => a.iter().collect(),
                    Value::Set(s) => s.iter().collect(),
                    _ => anyhow::bail!("'KeyUsages' should be an Array or Set"),
                };
                let mut usages = Vec::new();
                for item in items {
                    if let Value::String(s) = item {
                        usages.push(
                            key_usage_option(s.trim_matches('"'))
                                .ok_or_else(|| anyhow::anyhow!("invalid entries for 'KeyUsages' found"))?,
                        );
                    }
                }
                o.key_usages = usages;
            }
            _ => anyhow::bail!("invalid key option"),
        }
    }
    Ok(o)
}

/// Whether `child`'s signature verifies with `parent`'s public key.
fn signed_by(child: &Parsed, parent: &Parsed) -> bool {
    let Ok(spki) = parent.cert.tbs_certificate.subject_public_key_info.to_der() else {
        return false;
    };
    let Ok(key) = keys::parse_spki(&spki) else {
        return false;
    };
    let Ok(tbs) = child.cert.tbs_certificate.to_der() else {
        return false;
    };
    let Some(sig) = child.cert.signature.as_bytes() else {
        return false;
    };
    let alg = child.cert.signature_algorithm.oid.to_string();
    super::jwt::verify_certificate_signature(&key, &alg, &tbs, sig)
}

fn unix_secs(t: &x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

fn dns_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix);
    }
    pattern == host
}

/// Verifies the chain as Go's `Certificate.Verify` does for OPA: the first
/// certificate is the root, the last the leaf, those between intermediates.
/// Returns the chain from leaf to root.
fn verify_chain<'a>(certs: &'a [Parsed], opts: &VerifyOptions) -> Option<Vec<&'a Parsed>> {
    if certs.len() < 2 {
        return None;
    }
    let root = certs.first()?;
    let leaf = certs.last()?;
    let intermediates = &certs[1..certs.len() - 1];
    // Without `CurrentTime`, the decision's time (captured with it, so a
    // replay sees the same).
    let now = opts
        .now
        .unwrap_or_else(crate::policy::compiled::evaluation_now_ns)
        .div_euclid(1_000_000_000);
    let info = |p: &Parsed| Extensions::read(p.cert.tbs_certificate.extensions.as_deref().unwrap_or(&[])).ok();
    let leaf_ext = info(leaf)?;
    if !opts.dns_name.is_empty() {
        let ok = match opts.dns_name.parse::<IpAddr>() {
            Ok(ip) => leaf_ext.ips.iter().any(|i| i.parse::<IpAddr>().ok() == Some(ip)),
            Err(_) => leaf_ext.dns.iter().any(|d| dns_matches(d, &opts.dns_name)),
        };
        if !ok {
            return None;
        }
    }
    let mut chain = vec![leaf];
    let mut current = leaf;
    let mut used = vec![false; intermediates.len()];
    loop {
        let validity = &current.cert.tbs_certificate.validity;
        if now < unix_secs(&validity.not_before) || now > unix_secs(&validity.not_after) {
            return None;
        }
        if chain.len() > 1 {
            let e = info(current)?;
            if !e.basic_constraints_valid || !e.is_ca {
                return None;
            }
            if e.max_path_len >= 0 && (chain.len() as i64 - 2) > e.max_path_len {
                return None;
            }
        }
        if std::ptr::eq(current, root) {
            break;
        }
        let issuer = &current.cert.tbs_certificate.issuer;
        if root.cert.tbs_certificate.subject == *issuer && signed_by(current, root) {
            chain.push(root);
            current = root;
            continue;
        }
        let next = intermediates
            .iter()
            .enumerate()
            .find(|(i, c)| !used[*i] && c.cert.tbs_certificate.subject == *issuer && signed_by(current, c));
        let (i, next) = next?;
        used[i] = true;
        chain.push(next);
        current = next;
    }
    // A critical extension Go does not understand makes any chain invalid.
    for c in &chain {
        if !info(c)?.unhandled_critical.is_empty() {
            return None;
        }
    }
    // Each CA's name constraints bind every certificate below it.
    for (i, ca) in chain.iter().enumerate().skip(1) {
        let rules = info(ca)?.constraints;
        for below in &chain[..i] {
            if !rules.allow(&info(below)?) {
                return None;
            }
        }
    }
    if !opts.key_usages.contains(&0) {
        for c in &chain {
            let e = info(c)?;
            if !e.has_eku || e.ext_key_usage.contains(&0) {
                continue;
            }
            if !opts.key_usages.iter().any(|u| e.ext_key_usage.contains(u)) {
                return None;
            }
        }
    }
    Some(chain)
}

fn verify_answer(input: &str, opts: &VerifyOptions, uri_strings: bool) -> Answer {
    let invalid = || Ok(Value::from(vec![Value::from(false), Value::new_array()]));
    let Ok(certs) = certs_from_string(input) else {
        return invalid();
    };
    let Some(chain) = verify_chain(&certs, opts) else {
        return invalid();
    };
    let values = chain
        .iter()
        .map(|c| certificate_value(c, uri_strings))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Value::from(vec![Value::from(true), Value::from(values)]))
}

/// `crypto.x509.parse_and_verify_certificates(certs)`: `[valid, chain]`.
/// The first certificate is the trusted root, the last the leaf, the rest
/// intermediates; `chain` runs from the leaf to the root. Verification is
/// for a server certificate at the current time; `[false, []]` otherwise.
fn parse_and_verify_certificates(args: &[Value]) -> Answer {
    verify_answer(str_arg(args, 0)?, &VerifyOptions::default(), true)
}

/// `crypto.x509.parse_and_verify_certificates_with_options(certs, options)`:
/// as `parse_and_verify_certificates`, with `DNSName`, `CurrentTime` (ns),
/// `MaxConstraintComparisons` and `KeyUsages` (e.g. `"KeyUsageClientAuth"`).
/// An unknown option is a builtin error. OPA leaves `URIStrings` out here.
fn parse_and_verify_certificates_with_options(args: &[Value]) -> Answer {
    let input = str_arg(args, 0)?;
    let opts = verify_options(args.get(1).unwrap_or(&Value::Undefined))?;
    verify_answer(input, &opts, false)
}

/// `crypto.x509.parse_certificate_request(csr)`: a PEM (or base64 of PEM or
/// DER) certificate signing request as Go's `x509.CertificateRequest` JSON.
fn parse_certificate_request(args: &[Value]) -> Answer {
    let input = str_arg(args, 0)?;
    let mut bytes = input.as_bytes().to_vec();
    if !input.starts_with("-----BEGIN CERTIFICATE REQUEST-----") {
        bytes = base64::engine::general_purpose::STANDARD.decode(input.as_bytes())?;
    }
    if let Some((block, _)) = std::str::from_utf8(&bytes).ok().and_then(keys::pem_decode) {
        if block.label != "CERTIFICATE REQUEST" {
            anyhow::bail!("invalid PEM-encoded certificate signing request");
        }
        bytes = block.der;
    }
    let csr = x509_cert::request::CertReq::from_der(&bytes)?;
    let info = &csr.info;
    let mut exts = Vec::new();
    let mut attributes = Vec::new();
    for attr in info.attributes.iter() {
        let mut values = Vec::new();
        if attr.oid.to_string() == "1.2.840.113549.1.9.14" {
            for v in attr.values.iter() {
                let req: x509_cert::request::ExtensionReq = v.decode_as()?;
                let mut set = Vec::new();
                for ext in req.0 {
                    set.push(obj(vec![
                        ("Type", oid_value(&ext.extn_id)),
                        ("Value", b64(ext.extn_value.as_bytes())),
                    ]));
                    exts.push(ext);
                }
                values.push(Value::from(set));
            }
        }
        attributes.push(obj(vec![
            ("Type", oid_value(&attr.oid)),
            ("Value", Value::from(values)),
        ]));
    }
    let e = Extensions::read(&exts)?;
    let (pk_alg, pk) = public_key_value(&info.public_key);
    let uris: Vec<Value> = e.uris.iter().map(|u| url_value(u)).collect();
    Ok(obj(vec![
        ("Attributes", list_or_null(attributes)),
        ("DNSNames", strings_or_null(&e.dns)),
        ("EmailAddresses", strings_or_null(&e.emails)),
        ("Extensions", list_or_null(e.list.clone())),
        ("ExtraExtensions", Value::Null),
        ("IPAddresses", strings_or_null(&e.ips)),
        ("PublicKey", pk),
        ("PublicKeyAlgorithm", Value::from(pk_alg)),
        ("Raw", b64(&bytes)),
        ("RawSubject", b64(&info.subject.to_der()?)),
        ("RawSubjectPublicKeyInfo", b64(&info.public_key.to_der()?)),
        ("RawTBSCertificateRequest", b64(&info.to_der()?)),
        ("Signature", b64(csr.signature.raw_bytes())),
        (
            "SignatureAlgorithm",
            Value::from(signature_algorithm(&csr.algorithm.oid.to_string())),
        ),
        ("Subject", name_value(&info.subject)),
        ("URIs", list_or_null(uris)),
        ("Version", Value::from(0i64)),
    ]))
}

fn b64url_big(n: &rsa::BigUint) -> Value {
    Value::from(super::b64url_encode(&n.to_bytes_be()))
}

/// `crypto.x509.parse_rsa_private_key(pem)`: the first private key in the
/// PEM text (or base64 of it) as a JWK object: an RSA key (PKCS #1 or
/// PKCS #8) with `kty`, `n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`, or an EC
/// key with `kty`, `crv`, `x`, `y`, `d`. Text without a key answers null.
fn parse_rsa_private_key(args: &[Value]) -> Answer {
    let input = str_arg(args, 0)?;
    if input.is_empty() {
        anyhow::bail!("input PEM data was empty");
    }
    let mut text = input.to_string();
    if !input.starts_with("-----BEGIN") {
        let raw = base64::engine::general_purpose::STANDARD.decode(input.as_bytes())?;
        text = String::from_utf8_lossy(&raw).into_owned();
    }
    let Some(key) = private_keys(&text)?.into_iter().next() else {
        return Ok(Value::Null);
    };
    let ec = |crv: &str, point: &[u8], d: &[u8]| {
        let coords = point.get(1..).unwrap_or(&[]);
        let half = coords.len() / 2;
        obj(vec![
            ("crv", Value::from(crv)),
            ("d", Value::from(super::b64url_encode(d))),
            ("kty", Value::from("EC")),
            ("x", Value::from(super::b64url_encode(&coords[..half]))),
            ("y", Value::from(super::b64url_encode(&coords[half..]))),
        ])
    };
    Ok(match &key {
        PrivateKey::Rsa(k) => {
            let primes = k.primes();
            let (Some(p), Some(q)) = (primes.first(), primes.get(1)) else {
                anyhow::bail!("RSA key without two primes");
            };
            let one = rsa::BigUint::from(1u8);
            let qi = k
                .crt_coefficient()
                .ok_or_else(|| anyhow::anyhow!("no CRT coefficient"))?;
            obj(vec![
                ("d", b64url_big(k.d())),
                ("dp", b64url_big(&(k.d() % (p - &one)))),
                ("dq", b64url_big(&(k.d() % (q - &one)))),
                ("e", b64url_big(k.e())),
                ("kty", Value::from("RSA")),
                ("n", b64url_big(k.n())),
                ("p", b64url_big(p)),
                ("q", b64url_big(q)),
                ("qi", b64url_big(&qi)),
            ])
        }
        PrivateKey::P256(k) => ec(
            "P-256",
            k.public_key().to_encoded_point(false).as_bytes(),
            &k.to_bytes(),
        ),
        PrivateKey::P384(k) => ec(
            "P-384",
            k.public_key().to_encoded_point(false).as_bytes(),
            &k.to_bytes(),
        ),
        PrivateKey::P521(k) => ec(
            "P-521",
            k.public_key().to_encoded_point(false).as_bytes(),
            &k.to_bytes(),
        ),
        PrivateKey::Ed25519(_) => anyhow::bail!("unsupported key type for a JWK"),
    })
}

/// A parsed private key.
enum PrivateKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    P521(p521::SecretKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

fn checked_rsa(k: rsa::RsaPrivateKey) -> anyhow::Result<PrivateKey> {
    if k.n().bits() > keys::MAX_RSA_BITS {
        anyhow::bail!("RSA key larger than {} bits", keys::MAX_RSA_BITS);
    }
    Ok(PrivateKey::Rsa(Box::new(k)))
}

/// Private key encodings longer than this are refused unparsed: an RSA key
/// of `MAX_RSA_BITS` takes about a third of it.
const MAX_KEY_DER: usize = 16 * 1024;

fn check_key_der(der: &[u8]) -> anyhow::Result<()> {
    if der.len() > MAX_KEY_DER {
        anyhow::bail!("private key encoding too large");
    }
    Ok(())
}

/// A PKCS #1 RSA key (Go's `x509.ParsePKCS1PrivateKey`).
fn pkcs1_key(der: &[u8]) -> anyhow::Result<PrivateKey> {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    check_key_der(der)?;
    checked_rsa(rsa::RsaPrivateKey::from_pkcs1_der(der)?)
}

/// A PKCS #8 key (Go's `x509.ParsePKCS8PrivateKey`): RSA, ECDSA, Ed25519.
fn pkcs8_key(der: &[u8]) -> anyhow::Result<PrivateKey> {
    use rsa::pkcs8::DecodePrivateKey as _;
    check_key_der(der)?;
    if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
        return checked_rsa(k);
    }
    if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
        return Ok(PrivateKey::P256(k));
    }
    if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
        return Ok(PrivateKey::P384(k));
    }
    if let Ok(k) = p521::SecretKey::from_pkcs8_der(der) {
        return Ok(PrivateKey::P521(k));
    }
    if let Ok(k) = ed25519_dalek::pkcs8::DecodePrivateKey::from_pkcs8_der(der) {
        return Ok(PrivateKey::Ed25519(Box::new(k)));
    }
    anyhow::bail!("x509: failed to parse private key")
}

/// A SEC 1 EC key (Go's `x509.ParseECPrivateKey`).
fn sec1_key(der: &[u8]) -> anyhow::Result<PrivateKey> {
    check_key_der(der)?;
    if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
        return Ok(PrivateKey::P256(k));
    }
    if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
        return Ok(PrivateKey::P384(k));
    }
    if let Ok(k) = p521::SecretKey::from_sec1_der(der) {
        return Ok(PrivateKey::P521(k));
    }
    anyhow::bail!("x509: failed to parse EC private key")
}

fn ec_private_value(point: &[u8], d: &[u8]) -> Value {
    let coords = point.get(1..).unwrap_or(&[]);
    let half = coords.len() / 2;
    obj(vec![
        ("Curve", Value::new_object()),
        ("D", big(d)),
        ("X", big(&coords[..half])),
        ("Y", big(&coords[half..])),
    ])
}

/// Go's JSON of `*rsa.PrivateKey`, `*ecdsa.PrivateKey` or
/// `ed25519.PrivateKey`.
fn private_key_value(key: &PrivateKey) -> anyhow::Result<Value> {
    Ok(match key {
        PrivateKey::Rsa(k) => {
            let primes = k.primes();
            let (Some(p), Some(q)) = (primes.first(), primes.get(1)) else {
                anyhow::bail!("RSA key without two primes");
            };
            let one = rsa::BigUint::from(1u8);
            let qinv = k
                .crt_coefficient()
                .ok_or_else(|| anyhow::anyhow!("no CRT coefficient"))?;
            obj(vec![
                ("D", big(&k.d().to_bytes_be())),
                ("E", big(&k.e().to_bytes_be())),
                ("N", big(&k.n().to_bytes_be())),
                (
                    "Precomputed",
                    obj(vec![
                        ("CRTValues", Value::new_array()),
                        ("Dp", big(&(k.d() % (p - &one)).to_bytes_be())),
                        ("Dq", big(&(k.d() % (q - &one)).to_bytes_be())),
                        ("Qinv", big(&qinv.to_bytes_be())),
                    ]),
                ),
                (
                    "Primes",
                    Value::from(primes.iter().map(|p| big(&p.to_bytes_be())).collect::<Vec<_>>()),
                ),
            ])
        }
        PrivateKey::P256(k) => ec_private_value(k.public_key().to_encoded_point(false).as_bytes(), &k.to_bytes()),
        PrivateKey::P384(k) => ec_private_value(k.public_key().to_encoded_point(false).as_bytes(), &k.to_bytes()),
        PrivateKey::P521(k) => ec_private_value(k.public_key().to_encoded_point(false).as_bytes(), &k.to_bytes()),
        PrivateKey::Ed25519(k) => b64(&k.to_keypair_bytes()),
    })
}

/// `crypto.parse_private_keys(keys)`: every private key in the PEM text
/// (or base64 of it) — `RSA PRIVATE KEY` (PKCS #1), `PRIVATE KEY`
/// (PKCS #8) and `EC PRIVATE KEY` (SEC 1) blocks, others skipped — as Go's
/// JSON of the key structs. An empty string answers null; text without
/// keys, an empty array.
fn parse_private_keys(args: &[Value]) -> Answer {
    let input = str_arg(args, 0)?;
    if input.is_empty() {
        return Ok(Value::Null);
    }
    let keys = private_keys(input)?;
    Ok(Value::from(
        keys.iter().map(private_key_value).collect::<anyhow::Result<Vec<_>>>()?,
    ))
}

/// The private keys in PEM text, or in base64 of it (Go's
/// `getPrivateKeysFromPEMData` in OPA).
fn private_keys(input: &str) -> anyhow::Result<Vec<PrivateKey>> {
    let text = match base64::engine::general_purpose::STANDARD.decode(input.as_bytes()) {
        Ok(raw) => String::from_utf8_lossy(&raw).into_owned(),
        Err(_) => input.to_string(),
    };
    let mut rest = text.as_str();
    let mut out = Vec::new();
    while let Some((block, after)) = keys::pem_decode(rest) {
        rest = after;
        let key = match block.label.as_str() {
            "RSA PRIVATE KEY" => pkcs1_key(&block.der)?,
            "PRIVATE KEY" => pkcs8_key(&block.der)?,
            "EC PRIVATE KEY" => sec1_key(&block.der)?,
            _ => continue,
        };
        if out.len() >= MAX_CERTS {
            anyhow::bail!("too many keys");
        }
        out.push(key);
    }
    Ok(out)
}

/// The text as PEM: itself when it starts with a PEM header, else its
/// base64 decoding, wrapped as a `label` block when that is not PEM either.
fn pem_or_der(input: &str, label: &str) -> anyhow::Result<String> {
    if input.starts_with("-----BEGIN ") {
        return Ok(input.to_string());
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(input.as_bytes())?;
    if raw.starts_with(b"-----BEGIN ") {
        return Ok(String::from_utf8_lossy(&raw).into_owned());
    }
    let body = base64::engine::general_purpose::STANDARD.encode(&raw);
    Ok(format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"))
}

/// `crypto.x509.parse_keypair(cert, pem)`: Go's `tls.X509KeyPair` of the
/// certificate chain and private key (PEM, or base64 of PEM or DER) as JSON:
/// `Certificate` (DER, base64), `PrivateKey`, `Leaf` and Go's empty
/// `OCSPStaple`, `SignedCertificateTimestamps`,
/// `SupportedSignatureAlgorithms`. A key that does not match the leaf's
/// public key is a builtin error.
fn parse_keypair(args: &[Value]) -> Answer {
    let cert_pem = pem_or_der(str_arg(args, 0)?, "CERTIFICATE")?;
    let key_pem = pem_or_der(str_arg(args, 1)?, "PRIVATE KEY")?;
    let mut ders = Vec::new();
    let mut rest = cert_pem.as_str();
    while let Some((block, after)) = keys::pem_decode(rest) {
        rest = after;
        if block.label == "CERTIFICATE" {
            if ders.len() >= MAX_CERTS {
                anyhow::bail!("too many certificates");
            }
            ders.push(block.der);
        }
    }
    let first = ders
        .first()
        .ok_or_else(|| anyhow::anyhow!("tls: failed to find any PEM data in certificate input"))?;
    let mut rest = key_pem.as_str();
    let key_der = loop {
        let Some((block, after)) = keys::pem_decode(rest) else {
            anyhow::bail!("tls: failed to find any PEM data in key input");
        };
        rest = after;
        if block.label == "PRIVATE KEY" || block.label.ends_with(" PRIVATE KEY") {
            break block.der;
        }
    };
    let key = pkcs1_key(&key_der)
        .or_else(|_| pkcs8_key(&key_der))
        .or_else(|_| sec1_key(&key_der))
        .map_err(|_| anyhow::anyhow!("tls: failed to parse private key"))?;
    let leaf = parse_der_certs(first)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no certificate"))?;
    let spki = leaf.cert.tbs_certificate.subject_public_key_info.to_der()?;
    let matches = match (keys::parse_spki(&spki)?, &key) {
        (Key::Rsa(public), PrivateKey::Rsa(k)) => public.n() == k.n() && public.e() == k.e(),
        (Key::P256(public), PrivateKey::P256(k)) => public == p256::ecdsa::VerifyingKey::from(k.public_key()),
        (Key::P384(public), PrivateKey::P384(k)) => public == p384::ecdsa::VerifyingKey::from(k.public_key()),
        (Key::P521(public), PrivateKey::P521(k)) => {
            public.to_encoded_point(false) == k.public_key().to_encoded_point(false)
        }
        (Key::Ed25519(public), PrivateKey::Ed25519(k)) => public == k.verifying_key(),
        _ => anyhow::bail!("tls: private key type does not match public key type"),
    };
    if !matches {
        anyhow::bail!("tls: private key does not match public key");
    }
    Ok(obj(vec![
        (
            "Certificate",
            Value::from(ders.iter().map(|d| b64(d)).collect::<Vec<_>>()),
        ),
        ("Leaf", certificate_value(&leaf, false)?),
        ("OCSPStaple", Value::Null),
        ("PrivateKey", private_key_value(&key)?),
        ("SignedCertificateTimestamps", Value::Null),
        ("SupportedSignatureAlgorithms", Value::Null),
    ]))
}
