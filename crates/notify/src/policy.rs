//! Where a webhook may point. Only https, except loopback by name or address
//! (`http://127.0.0.1`, `http://localhost`, as for the Graph URL); never a host whose
//! addresses are private (other loopback, RFC 1918, link-local, unique local, CGNAT) unless
//! the operator allows them (`SAFEGPT_WEBHOOK_ALLOW_PRIVATE`). The addresses are checked
//! where they are resolved for the connection itself, so a name that resolves to a public
//! address when the endpoint is saved and to a private one when it is called is refused then.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// The longest URL accepted.
const MAX_URL_CHARS: usize = 2048;

/// Checks a URL an administrator typed; the error names the fix.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!("longer than {MAX_URL_CHARS} characters"));
    }
    let url =
        Url::parse(raw).map_err(|e| format!("'{raw}' is not a URL ({e}); give one like https://example.org/hooks"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password: the signature authenticates each message".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    let loopback = is_loopback_host(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("must use https (http only for 127.0.0.1 or localhost)".into()),
        other => return Err(format!("scheme '{other}' is not supported; use https")),
    }
    if let Some(ip) = literal_ip(&url)
        && !loopback
        && !allow_private
        && !is_public(ip)
    {
        return Err(format!(
            "{ip} is a private address; SafeGPT calls only public endpoints unless the operator sets \
             SAFEGPT_WEBHOOK_ALLOW_PRIVATE=true"
        ));
    }
    Ok(url)
}

/// A URL whose host is an address that is not public.
pub fn is_private_literal(url: &Url) -> bool {
    literal_ip(url).is_some_and(|ip| !is_public(ip))
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

/// `localhost`, or a loopback address written as such.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        // A scheme `url` does not know (smtp+plain) keeps an address as a name.
        Some(Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// An address reachable on the public internet (not loopback, private, link-local, shared,
/// unspecified, multicast or documentation).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0))
        }
        IpAddr::V6(v6) => {
            // Addresses that carry an IPv4 address are as public as it is: mapped, compatible
            // (`::a.b.c.d`), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
            let s = v6.segments();
            let embedded =
                |hi: u16, lo: u16| IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_public(embedded(s[6], s[7]));
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_public(embedded(s[1], s[2]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0)
        }
    }
}

/// Resolves names for the webhook client, keeping only the addresses the policy allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicyResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let loopback_name = host.eq_ignore_ascii_case("localhost");
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()) || (loopback_name && a.ip().is_loopback()))
                .collect();
            if allowed.is_empty() {
                let message = format!(
                    "{host} resolves only to private addresses ({}); SafeGPT calls only public endpoints unless \
                     the operator sets SAFEGPT_WEBHOOK_ALLOW_PRIVATE=true",
                    found.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ")
                );
                return Err(message.into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub(crate) fn resolver(allow_private: bool) -> Arc<PolicyResolver> {
    Arc::new(PolicyResolver { allow_private })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_public_http_only_on_loopback() {
        assert!(check_url("https://hooks.example.org/safegpt", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook", false).is_ok());
        assert!(check_url("http://localhost:8080/hook", false).is_ok());
        assert!(check_url("http://[::1]:8080/hook", false).is_ok());
        assert!(check_url("http://hooks.example.org/x", false).unwrap_err().contains("https"));
        assert!(check_url("ftp://hooks.example.org/x", false).unwrap_err().contains("scheme"));
        assert!(check_url("https://user:pw@hooks.example.org/x", false).unwrap_err().contains("password"));
        assert!(check_url("not a url", false).unwrap_err().contains("not a URL"));
    }

    #[test]
    fn private_addresses_are_refused_unless_allowed() {
        for private in [
            "https://10.0.0.5/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest",
            "https://[fd00::1]/x",
            "https://100.64.0.1/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://0.0.0.0/x",
        ] {
            assert!(check_url(private, false).unwrap_err().contains("SAFEGPT_WEBHOOK_ALLOW_PRIVATE"), "{private}");
            assert!(check_url(private, true).is_ok(), "{private}");
        }
        for private in
            ["::10.0.0.1", "64:ff9b::a00:1", "2002:a00:1::", "fec0::1", "198.18.0.1", "192.0.0.8", "240.0.0.1"]
        {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        assert!(is_public("64:ff9b::5db8:d822".parse().unwrap()), "NAT64 of a public address");
        assert!(is_public("93.184.216.34".parse().unwrap()));
        assert!(is_public("2606:2800:220:1::".parse().unwrap()));
        assert!(!is_public("127.0.0.2".parse().unwrap()));
    }

    #[tokio::test]
    async fn localhost_by_name_resolves_to_loopback_only() {
        use reqwest::dns::Resolve;
        let strict = PolicyResolver { allow_private: false };
        let addrs: Vec<SocketAddr> = strict.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
