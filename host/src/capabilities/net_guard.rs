//! Which hosts and addresses a plugin may reach.
//!
//! Two independent checks guard every outbound request a plugin makes:
//!
//! 1. **The allow-list**, per plugin, by host name: `*` (any host),
//!    `*.example.com` (any subdomain, not the apex), or an exact name.
//! 2. **The address guard**, after DNS resolution: private (RFC 1918),
//!    loopback, link-local, CGNAT, unique-local, multicast and unspecified
//!    addresses are refused unless the operator allows private networks.
//!    Resolution happens inside the HTTP client's resolver
//!    ([`GuardedResolver`]), so the address checked is the address
//!    connected to: a DNS answer cannot change between check and use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host name.
    Any,
    /// `*.example.com`: any subdomain of `example.com`.
    Subdomains(String),
    /// `example.com`: exactly this host.
    Exact(String),
}

impl HostPattern {
    /// Parses `*`, `*.example.com` or `example.com` (case-insensitive).
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim().to_ascii_lowercase();
        if pattern == "*" {
            return Ok(Self::Any);
        }
        if let Some(domain) = pattern.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return Err(format!("`{pattern}` is not a host pattern"));
            }
            return Ok(Self::Subdomains(domain.to_owned()));
        }
        if pattern.is_empty() || pattern.contains(['*', '/', ':', ' ']) && !pattern.starts_with('[')
        {
            return Err(format!("`{pattern}` is not a host pattern"));
        }
        Ok(Self::Exact(pattern))
    }

    /// Whether `host` (lowercase, no port) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => exact == host,
            Self::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.ends_with('.')),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Subdomains(domain) => write!(f, "*.{domain}"),
            Self::Exact(host) => f.write_str(host),
        }
    }
}

/// A plugin's allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAllowList(Vec<HostPattern>);

impl HostAllowList {
    /// Parses every pattern; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        patterns
            .iter()
            .map(|p| HostPattern::parse(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `host` is allowed.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.0.iter().any(|pattern| pattern.matches(&host))
    }

    /// The patterns, as configured.
    pub fn patterns(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why an address is refused, or `None` when it is public.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("IETF protocol assignment")
    } else {
        None
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) embeds an IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return v4_reason(Ipv4Addr::from(((hi as u32) << 16) | lo as u32));
    }
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some("unique-local (private)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// The error the resolver returns when every address is refused; the HTTP
/// capability finds it in the error chain to report `private-address`.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to non-public addresses ({reason}: {addr})")]
pub struct BlockedAddress {
    /// The host name looked up.
    pub host: String,
    /// Why the (first) address was refused.
    pub reason: &'static str,
    /// The refused address.
    pub addr: IpAddr,
}

/// A DNS resolver for reqwest that drops non-public addresses unless
/// private networks are allowed.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    /// A resolver; `allow_private` turns the address guard off.
    pub fn new(allow_private: bool) -> Arc<Self> {
        Arc::new(Self { allow_private })
    }
}

impl GuardedResolver {
    /// Resolves `host` and keeps only the addresses the guard allows; an
    /// error names the first address refused when none is left.
    pub async fn resolve_ips(
        &self,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|addr| match non_public_reason(addr.ip()) {
                Some(reason) if !self.allow_private => {
                    first_refusal.get_or_insert((reason, addr.ip()));
                    false
                }
                _ => true,
            })
            .collect();
        if allowed.is_empty()
            && let Some((reason, addr)) = first_refusal
        {
            return Err(Box::new(BlockedAddress {
                host: host.to_string(),
                reason,
                addr,
            }));
        }
        Ok(allowed)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = guard.resolve_ips(&host).await?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_hosts() {
        let list = HostAllowList::parse(&["hooks.slack.com", "*.example.com"]).unwrap();
        assert!(list.allows("hooks.slack.com"));
        assert!(list.allows("HOOKS.slack.com."));
        assert!(list.allows("a.b.example.com"));
        assert!(!list.allows("example.com"));
        assert!(!list.allows("evilexample.com"));
        assert!(!list.allows("slack.com"));
        assert!(
            HostAllowList::parse(&["*"])
                .unwrap()
                .allows("anything.test")
        );
        assert!(HostAllowList::default().is_empty());
        assert!(HostPattern::parse("*.").is_err());
        assert!(HostPattern::parse("a*b").is_err());
    }

    #[test]
    fn non_public_addresses_are_classified() {
        let refused = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ];
        for ip in refused {
            assert!(
                non_public_reason(ip.parse().unwrap()).is_some(),
                "{ip} should be refused"
            );
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert_eq!(
                non_public_reason(ip.parse().unwrap()),
                None,
                "{ip} is public"
            );
        }
    }
}
