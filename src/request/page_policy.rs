//! Which addresses a web egress's browser may reach. A page is the requester's choice, and
//! what it shows is recorded into the requester's own file: without a policy a request
//! could read a cloud metadata service (169.254.169.254) or any other host only the
//! worker can reach. By default link-local addresses, the unspecified address and the
//! metadata services' names and addresses are refused; loopback and private ranges stay
//! allowed (local templates are common) unless the worker refuses them too
//! (`tessera.refuse_private_pages`). The same policy is applied to the request's URL
//! (before any lookup or connection where the URL names an address) and, in the browser,
//! to every request the page makes: redirects, frames, subresources, fetches.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Host names of cloud metadata services (lower case, without a trailing dot).
const METADATA_NAMES: [&str; 4] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
];

/// Metadata addresses outside the link-local ranges: Alibaba Cloud's, Azure's wire
/// server, and AWS's IPv6 endpoint.
const METADATA_ADDRS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// The policy a worker applies to pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagePolicy {
    /// Refuse loopback and private ranges too (and `localhost`).
    pub refuse_private: bool,
}

/// Why an address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A link-local address (169.254.0.0/16, fe80::/10): where cloud metadata lives.
    #[error("link-local addresses (cloud metadata services) are refused")]
    LinkLocal,
    /// A cloud metadata service's name or address.
    #[error("cloud metadata services are refused")]
    Metadata,
    /// 0.0.0.0 or `::` (which reaches this machine).
    #[error("the unspecified address is refused")]
    Unspecified,
    /// Loopback or a private range, with `refuse_private`.
    #[error("loopback and private addresses are refused on this worker")]
    Private,
}

/// An address a page may not reach, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the address {host} is not allowed: {why}")]
pub struct Refused {
    /// The host as the URL names it, or the address it resolved to.
    pub host: String,
    /// Why.
    pub why: Refusal,
}

/// An IPv6 address that carries an IPv4 one (mapped `::ffff:a.b.c.d` or NAT64
/// `64:ff9b::a.b.c.d`), as the IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    })
}

impl PagePolicy {
    /// Whether a page may reach `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if METADATA_ADDRS.contains(&ip) {
            return Err(Refusal::Metadata);
        }
        match ip {
            IpAddr::V4(v4) => self.check_v4(v4),
            IpAddr::V6(v6) => {
                if let Some(v4) = embedded_v4(v6) {
                    return self.check_ip(IpAddr::V4(v4));
                }
                if v6.is_unspecified() {
                    return Err(Refusal::Unspecified);
                }
                if v6.is_unicast_link_local() {
                    return Err(Refusal::LinkLocal);
                }
                if self.refuse_private && (v6.is_loopback() || v6.is_unique_local()) {
                    return Err(Refusal::Private);
                }
                Ok(())
            }
        }
    }

    fn check_v4(&self, ip: Ipv4Addr) -> Result<(), Refusal> {
        if ip.is_unspecified() || ip.octets()[0] == 0 {
            return Err(Refusal::Unspecified);
        }
        if ip.is_link_local() {
            return Err(Refusal::LinkLocal);
        }
        let [a, b, ..] = ip.octets();
        let shared = a == 100 && (64..128).contains(&b);
        if self.refuse_private && (ip.is_loopback() || ip.is_private() || shared) {
            return Err(Refusal::Private);
        }
        Ok(())
    }

    /// Whether a page may reach `host` (a URL's host) by what it names, before any
    /// lookup: an address is checked as such, a name against the metadata services'
    /// names (and `localhost` with `refuse_private`). A name's addresses are checked
    /// once it is resolved ([`PagePolicy::check_ip`]).
    pub fn check_host(&self, host: &url::Host<&str>) -> Result<(), Refusal> {
        match host {
            url::Host::Ipv4(ip) => self.check_ip(IpAddr::V4(*ip)),
            url::Host::Ipv6(ip) => self.check_ip(IpAddr::V6(*ip)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if METADATA_NAMES.contains(&name.as_str()) {
                    return Err(Refusal::Metadata);
                }
                let local = name == "localhost" || name.ends_with(".localhost");
                if self.refuse_private && local {
                    return Err(Refusal::Private);
                }
                Ok(())
            }
        }
    }

    /// Whether a page may open `url` by its host (before any lookup). URLs without a
    /// network host (`data:`, `blob:`, `about:`) pass: they reach nothing.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        match url.host() {
            Some(host) => self.check_host(&host).map_err(|why| Refused {
                host: host.to_string(),
                why,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_check(policy: PagePolicy, u: &str) -> Result<(), Refusal> {
        policy
            .check_url(&url::Url::parse(u).unwrap())
            .map_err(|r| r.why)
    }

    #[test]
    fn metadata_and_link_local_are_refused_by_default_in_every_spelling() {
        let p = PagePolicy::default();
        for (u, why) in [
            (
                "http://169.254.169.254/latest/meta-data/",
                Refusal::LinkLocal,
            ),
            ("http://169.254.0.1:8080/", Refusal::LinkLocal),
            // The same address written as one number, in hex, and IPv4-mapped.
            ("http://2852039166/", Refusal::LinkLocal),
            ("http://0xa9.0xfe.0xa9.0xfe/", Refusal::LinkLocal),
            ("http://[::ffff:169.254.169.254]/", Refusal::LinkLocal),
            ("http://[64:ff9b::a9fe:a9fe]/", Refusal::LinkLocal),
            ("http://[fe80::1]/", Refusal::LinkLocal),
            ("http://[fd00:ec2::254]/", Refusal::Metadata),
            ("http://100.100.100.200/", Refusal::Metadata),
            ("http://168.63.129.16/", Refusal::Metadata),
            (
                "http://metadata.google.internal/computeMetadata/v1/",
                Refusal::Metadata,
            ),
            ("http://METADATA.google.internal./", Refusal::Metadata),
            ("http://0.0.0.0:7880/", Refusal::Unspecified),
            ("http://[::]/", Refusal::Unspecified),
        ] {
            assert_eq!(url_check(p, u), Err(why), "{u}");
        }
        for u in [
            "http://127.0.0.1:8080/template/",
            "http://localhost/",
            "http://10.0.0.5/",
            "http://192.168.1.2/",
            "http://[::1]/",
            "https://example.com/",
            "data:text/html,hi",
        ] {
            assert_eq!(url_check(p, u), Ok(()), "{u}");
        }
    }

    #[test]
    fn the_worker_can_refuse_loopback_and_private_ranges_too() {
        let p = PagePolicy {
            refuse_private: true,
        };
        for u in [
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://app.localhost/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.0.1/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[fd12::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(url_check(p, u), Err(Refusal::Private), "{u}");
        }
        assert_eq!(url_check(p, "https://example.com/"), Ok(()));
        assert_eq!(p.check_ip("8.8.8.8".parse().unwrap()), Ok(()));
        let r = PagePolicy::default()
            .check_url(&url::Url::parse("http://169.254.169.254/").unwrap())
            .unwrap_err();
        assert_eq!(
            r.to_string(),
            "the address 169.254.169.254 is not allowed: link-local addresses (cloud metadata services) are refused"
        );
    }
}
