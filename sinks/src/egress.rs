//! Egress policy: which addresses a sink may connect to.
//!
//! A sink made with an [`Egress`] (a tenant's sink) connects only to public
//! addresses, and to the networks and host names the operator allows. The
//! check is made on the addresses a connection is about to use, not on the
//! configured text: for HTTP sinks a DNS resolver ([`Egress::resolver`])
//! drops the disallowed addresses of every name it resolves (so a name that
//! later resolves elsewhere is checked again), a host written as an IP
//! address (which no resolver sees) is checked before each request
//! ([`Egress::check_url`]), redirects are not followed and no proxy is
//! used. A refusal reads `egress refused: 127.0.0.1 is loopback`.
//!
//! Not public, unless allowed: loopback, private (RFC 1918, RFC 4193 and
//! the old site-local), link-local (169.254.0.0/16, where cloud metadata
//! services answer, and fe80::/10), shared address space (CGNAT,
//! 100.64.0.0/10), unspecified, multicast, broadcast, documentation,
//! benchmarking and other reserved ranges; IPv4 addresses written in IPv6
//! (IPv4-mapped, IPv4-compatible, NAT64 and 6to4) are judged by the IPv4
//! address they carry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// A network, `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.1.0.0/16`, `fd00::/8`, or a single address.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not a network (address/prefix, e.g. 10.1.0.0/16)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            // An IPv4 network also holds the IPv6 forms of its addresses.
            (IpAddr::V4(_), IpAddr::V6(ip)) => embedded_v4(ip).is_some_and(|v4| self.contains(IpAddr::V4(v4))),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let whole = usize::from(bits / 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped (`::ffff:0:0/96`),
/// IPv4-compatible (`::/96`, beyond `::` and `::1`), NAT64 (`64:ff9b::/96`)
/// or 6to4 (`2002::/16`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    let s = ip.segments();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..5] == [0; 5] && (s[5] == 0xffff || (s[5] == 0 && u32::from(tail) > 1)) {
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// Why `ip` is not a public address, or None when it is.
pub fn not_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => not_public_v4(v4),
        IpAddr::V6(v6) => not_public_v6(v6),
    }
}

fn not_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_loopback() => "loopback",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "shared address space (CGNAT)",
        (169, 254, _) => "link-local",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "for documentation",
        (198, 18..=19, _) => "for benchmarking",
        (192, 0, 0) | (192, 88, 99) => "reserved",
        _ if ip.is_broadcast() => "broadcast",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn not_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = embedded_v4(ip) {
        return not_public_v4(v4);
    }
    let s = ip.segments();
    Some(match s[0] {
        0xfc00..=0xfdff | 0xfec0..=0xfeff => "private",
        0xfe80..=0xfebf => "link-local",
        0xff00..=0xffff => "multicast",
        0x2001 if s[1] == 0x0db8 => "for documentation",
        0x3fff if s[1] < 0x1000 => "for documentation",
        0x2001 if s[1] == 0x0002 && s[2] == 0 => "for benchmarking",
        0x2001 if s[1] < 0x0200 => "reserved",
        0x0000..=0x00ff => "reserved",
        0x0100 if s[1..4] == [0, 0, 0] => "reserved",
        0x5f00 => "reserved",
        _ => return None,
    })
}

/// A connection the policy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The address (or host) refused.
    pub target: String,
    pub why: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "egress refused: {} is {}", self.target, self.why)
    }
}

impl std::error::Error for Refused {}

/// Where a tenant's sink may connect: public addresses, and what the
/// operator allows.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    networks: Vec<Cidr>,
    /// Lowercase; `*.example.com` matches any name below example.com.
    hosts: Vec<String>,
}

impl Egress {
    /// Public addresses, `networks` (CIDRs) and `hosts` (exact names, or
    /// `*.suffix` for any name under it), whatever the latter resolve to.
    pub fn new(networks: &[String], hosts: &[String]) -> Result<Self, String> {
        let networks = networks.iter().map(|n| Cidr::parse(n)).collect::<Result<Vec<_>, _>>()?;
        let hosts = hosts
            .iter()
            .map(|h| {
                let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
                let bare = h.strip_prefix("*.").unwrap_or(&h);
                let ok = !bare.is_empty()
                    && bare
                        .split('.')
                        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
                if ok {
                    Ok(h)
                } else {
                    Err(format!("{h:?} is not a host name or *.suffix pattern"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { networks, hosts })
    }

    /// Whether the operator allows this host name whatever it resolves to.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|p| match p.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1 && host.ends_with(suffix) && {
                    host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                }
            }
            None => *p == host,
        })
    }

    /// Refuses an address that is neither public nor in an allowed network.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        match not_public(ip) {
            Some(why) if !self.networks.iter().any(|n| n.contains(ip)) => Err(Refused {
                target: ip.to_string(),
                why: why.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Checks a host as written (a name or an IP address): an address is
    /// checked now; a name is checked when it is resolved.
    pub fn check_host(&self, host: &str) -> Result<(), Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.check_ip(ip),
            Err(_) => Ok(()),
        }
    }

    /// Checks an `http`/`https` URL's host as written; a URL that does not
    /// parse is left to the HTTP client to refuse.
    pub fn check_url(&self, url: &str) -> Result<(), Refused> {
        let Ok(url) = reqwest::Url::parse(url) else {
            return Ok(());
        };
        // The host as the client will use it: `0x7f.1` is read as 127.0.0.1.
        url.host_str().map_or(Ok(()), |host| self.check_host(host))
    }

    /// Resolves `host` and keeps the addresses the policy allows (all of
    /// them for an allowed host name); none allowed is a refusal naming the
    /// first address.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_ip(ip).map_err(ResolveError::Refused)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| ResolveError::Lookup(format!("{bare}: {e}")))?
            .collect();
        if self.host_allowed(bare) {
            return Ok(found);
        }
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.check_ip(a.ip()) {
                Ok(()) => true,
                Err(r) => {
                    first_refusal.get_or_insert(r);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), first_refusal) {
            (true, Some(r)) => Err(ResolveError::Refused(r)),
            (true, None) => Err(ResolveError::Lookup(format!("{bare}: no address"))),
            (false, _) => Ok(allowed),
        }
    }

    /// A DNS resolver for `reqwest` that applies this policy.
    pub fn resolver(self: &Arc<Self>) -> Arc<EgressResolver> {
        Arc::new(EgressResolver(self.clone()))
    }

    /// A resolver for the AWS SDK's HTTP client that applies this policy.
    pub fn aws_resolver(self: &Arc<Self>) -> EgressResolver {
        EgressResolver(self.clone())
    }
}

/// A name that could not be resolved to an allowed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    Refused(Refused),
    Lookup(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Refused(r) => r.fmt(f),
            ResolveError::Lookup(e) => write!(f, "cannot resolve {e}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// [`Egress`] as a DNS resolver.
#[derive(Debug, Clone)]
pub struct EgressResolver(Arc<Egress>);

impl reqwest::dns::Resolve for EgressResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = policy.resolve(&host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

impl aws_smithy_runtime_api::client::dns::ResolveDns for EgressResolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> aws_smithy_runtime_api::client::dns::DnsFuture<'a> {
        aws_smithy_runtime_api::client::dns::DnsFuture::new(async move {
            self.0
                .resolve(name, 0)
                .await
                .map(|addrs| addrs.into_iter().map(|a| a.ip()).collect::<Vec<_>>())
                .map_err(aws_smithy_runtime_api::client::dns::ResolveDnsError::new)
        })
    }
}

/// The HTTP client of an HTTP sink: never follows a redirect (it would send
/// the body and the credentials' headers wherever it points); with a
/// policy, it resolves through it and uses no proxy (a proxy would resolve
/// and connect on its behalf).
pub fn http_client(timeout: std::time::Duration, egress: Option<&Arc<Egress>>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(policy) = egress {
        b = b.no_proxy().dns_resolver(policy.resolver());
    }
    b.build().expect("an HTTP client with rustls")
}

/// The reason of a request that got no answer: for a sink under a policy,
/// short (the refusal itself, or the kind of failure) and without the
/// peer's words; otherwise the client's full error.
pub fn unreachable_reason(peer: &str, err: &reqwest::Error, egress: Option<&Arc<Egress>>) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return r.to_string();
        }
        if let Some(r) = e.downcast_ref::<ResolveError>() {
            return r.to_string();
        }
        source = e.source();
    }
    if egress.is_none() {
        return format!("{peer}: {err}");
    }
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_redirect() {
        "redirected"
    } else {
        "request failed"
    };
    format!("the peer was not reached: {kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_pass_by_default() {
        let e = Egress::default();
        for (addr, why) in [
            ("127.0.0.1", "loopback"),
            ("127.9.9.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared address space (CGNAT)"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("192.0.2.1", "for documentation"),
            ("198.18.0.1", "for benchmarking"),
            ("240.0.0.1", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "private"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "for documentation"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a00:1", "private"),
            ("2002:c0a8:0101::1", "private"),
        ] {
            let err = e.check_ip(ip(addr)).unwrap_err();
            assert_eq!(err.why, why, "{addr}");
            assert!(err.to_string().starts_with("egress refused: "), "{err}");
        }
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(e.check_ip(ip(addr)), Ok(()), "{addr}");
        }
        assert_eq!(
            e.check_ip(ip("127.0.0.1")).unwrap_err().to_string(),
            "egress refused: 127.0.0.1 is loopback"
        );
    }

    #[test]
    fn the_operator_allows_networks_and_hosts() {
        let e = Egress::new(
            &["127.0.0.0/8".into(), "10.20.0.0/16".into(), "fd00::1".into()],
            &["siem.corp.example".into(), "*.kafka.corp.example".into()],
        )
        .unwrap();
        assert_eq!(e.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(e.check_ip(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(e.check_ip(ip("10.20.9.9")), Ok(()));
        assert!(e.check_ip(ip("10.21.0.1")).is_err());
        assert_eq!(e.check_ip(ip("fd00::1")), Ok(()));
        assert!(e.check_ip(ip("fd00::2")).is_err());
        assert!(e.check_ip(ip("169.254.169.254")).is_err());
        assert!(e.host_allowed("SIEM.corp.example."));
        assert!(e.host_allowed("b1.kafka.corp.example"));
        assert!(!e.host_allowed("kafka.corp.example"));
        assert!(!e.host_allowed("evilkafka.corp.example"));
        assert!(!e.host_allowed("siem.corp.example.evil"));
        assert!(Egress::new(&["10.0.0.0/33".into()], &[]).is_err());
        assert!(Egress::new(&["not-a-net".into()], &[]).is_err());
        assert!(Egress::new(&[], &["bad host/".into()]).is_err());
    }

    #[test]
    fn urls_are_checked_as_the_client_reads_them() {
        let e = Egress::default();
        for url in [
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://169.254.169.254/latest/meta-data/",
            "https://[::ffff:a9fe:a9fe]/",
        ] {
            assert!(e.check_url(url).is_err(), "{url}");
        }
        assert_eq!(e.check_url("https://intake.example.com/"), Ok(()));
    }

    #[tokio::test]
    async fn names_are_resolved_and_filtered() {
        let e = Egress::default();
        let err = e.resolve("localhost", 80).await.unwrap_err();
        assert!(matches!(&err, ResolveError::Refused(r) if r.why == "loopback"), "{err}");
        let allowed = Egress::new(&[], &["localhost".into()]).unwrap();
        assert!(!allowed.resolve("localhost", 80).await.unwrap().is_empty());
        let net = Egress::new(&["127.0.0.0/8".into(), "::1/128".into()], &[]).unwrap();
        assert!(
            net.resolve("localhost", 80)
                .await
                .unwrap()
                .iter()
                .all(|a| a.ip().is_loopback())
        );
    }
}
