//! Syntax of the identifiers Entra uses.

/// Returns the lower-case hyphenated form if `raw` is a GUID (`8-4-4-4-12` hex digits,
/// optionally in braces), as Entra shows object, tenant and client ids.
pub fn normalize_guid(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let raw = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')).unwrap_or(raw);
    let groups: Vec<&str> = raw.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    if groups.len() != lengths.len() {
        return None;
    }
    for (group, len) in groups.iter().zip(lengths) {
        if group.len() != len || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
    }
    Some(raw.to_ascii_lowercase())
}

pub fn is_guid(raw: &str) -> bool {
    normalize_guid(raw).is_some()
}

/// A DNS name with at least two labels, as a verified tenant domain.
pub fn is_domain_name(raw: &str) -> bool {
    let labels: Vec<&str> = raw.split('.').collect();
    raw.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels.last().is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// An identifier parsed once: it derefs to its normalized text and is stored as that text
/// (a stored value is parsed again when read, so a corrupt row is refused, not trusted).
macro_rules! parsed_id {
    ($(#[$doc:meta])* $name:ident, $parse:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Trims and normalizes `raw`; the error names the cause and the fix (the caller
            /// names the field).
            pub fn parse(raw: &str) -> Result<$name, String> {
                let parse: fn(&str) -> Result<String, String> = $parse;
                parse(raw.trim()).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<$name, String> {
                $name::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

parsed_id!(
    /// The tenant: its GUID (`Directory (tenant) ID`) or a verified domain, lower-case.
    TenantId,
    |raw| {
        normalize_guid(raw).or_else(|| is_domain_name(raw).then(|| raw.to_ascii_lowercase())).ok_or_else(|| {
            format!(
                "'{raw}' is neither a GUID nor a domain name; copy the \"Directory (tenant) ID\" \
                 from the app registration's Overview page in Entra (e.g. 4e4dff32-6150-4c66-ae0d-cfc4ab7bc4d1) \
                 or use a verified domain such as contoso.onmicrosoft.com"
            )
        })
    }
);

parsed_id!(
    /// The app registration's `Application (client) ID`, a GUID in lower case.
    ClientId,
    |raw| {
        normalize_guid(raw).ok_or_else(|| {
            format!(
                "'{raw}' is not a GUID; copy the \"Application (client) ID\" from the app \
                 registration's Overview page in Entra"
            )
        })
    }
);

parsed_id!(
    /// A group's `Object ID`, a GUID in lower case.
    GroupId,
    |raw| {
        normalize_guid(raw).ok_or_else(|| {
            format!(
                "'{raw}' is not a group object id; in Entra open Groups, select the group \
                 and copy its \"Object ID\" (a GUID such as f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2), not its name"
            )
        })
    }
);

/// The longest address SMTP carries (RFC 5321: 254 octets in a path).
pub const MAX_EMAIL_CHARS: usize = 254;

/// An e-mail address of a local account or an administrator, parsed once at the edge: the
/// store and the application only ever hold valid ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(raw: String) -> Result<Email, String> {
        Email::parse(&raw)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

impl Email {
    /// Trims `raw`; the error names the cause (the caller names the field).
    pub fn parse(raw: &str) -> Result<Email, String> {
        let email = raw.trim();
        // Characters that have no place in an address anyone types, and that would turn an
        // address into markup or a header line elsewhere (`<`, `"`, CR/LF, ...). The
        // apostrophe stays allowed: Entra allows it in user names (o'brien@contoso.com).
        let forbidden = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"`".contains(c);
        let valid = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
        if valid && email.chars().count() <= MAX_EMAIL_CHARS && !email.contains(forbidden) {
            Ok(Email(email.to_owned()))
        } else {
            Err(format!("'{email}' is not an e-mail address like name@example.org"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert_eq!(
            normalize_guid("{4E4DFF32-6150-4C66-AE0D-CFC4AB7BC4D1}").as_deref(),
            Some("4e4dff32-6150-4c66-ae0d-cfc4ab7bc4d1")
        );
        assert!(!is_guid("4e4dff32-6150-4c66-ae0d-cfc4ab7bc4d"));
        assert!(!is_guid("4e4dff326150-4c66-ae0d-cfc4ab7bc4d12"));
        assert!(!is_guid("ff5756c2-03fa-45d3"));
        assert!(!is_guid("zzzzzzzz-6150-4c66-ae0d-cfc4ab7bc4d1"));
    }

    #[test]
    fn domains() {
        assert!(is_domain_name("contoso.onmicrosoft.com"));
        assert!(!is_domain_name("contoso"));
        assert!(!is_domain_name("bad domain.com"));
        assert!(!is_domain_name("1.2.3.4"));
    }

    #[test]
    fn ids_parse_normalize_and_refuse_with_the_fix() {
        assert_eq!(TenantId::parse(" Contoso.onmicrosoft.com ").unwrap(), "contoso.onmicrosoft.com");
        assert_eq!(
            ClientId::parse("{4F6847D7-FD3F-4B2D-9740-79170E634DE5}").unwrap(),
            "4f6847d7-fd3f-4b2d-9740-79170e634de5"
        );
        assert!(GroupId::parse("Sales team").unwrap_err().contains("Object ID"));
        assert!(ClientId::parse("SafeGPT").unwrap_err().contains("Application (client) ID"));
        // Stored as its text, and a corrupt stored value is refused when read.
        let id = GroupId::parse("f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2\"");
        assert!(serde_json::from_str::<GroupId>("\"not a group\"").is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(Email::parse("  ann@contoso.com ").unwrap().as_str(), "ann@contoso.com");
        for bad in [
            "",
            "ann",
            "@contoso.com",
            "ann@contoso",
            "ann@x@contoso.com",
            "a nn@contoso.com",
            "ann@contoso.com\0",
            "<script>@contoso.com",
            "ann@contoso.com\r\nBcc: x@y.org",
            "\"ann\"@contoso.com",
            "ann@contoso.",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert!(err.contains("is not an e-mail address"), "{bad}: {err}");
        }
        assert!(Email::parse(&format!("{}@contoso.com", "a".repeat(250))).is_err(), "longer than SMTP carries");
        assert!(Email::parse("jürgen@münchen.de").is_ok(), "international addresses are addresses");
        for good in ["o'brien@contoso.com", "ann+sales@contoso.com", "a.b-c_d!#^~@contoso.com"] {
            assert!(Email::parse(good).is_ok(), "Entra allows these in user names: {good}");
        }
    }
}
