//! The `@odata.nextLink` of a page read from the first bytes of its body. Graph writes the
//! control information before `value` (as OData's JSON format asks of a streaming producer),
//! so the next page can be requested while the rest of this one is still arriving and being
//! parsed. Only a top-level key counts; when `value` (or the end of the object) comes first,
//! the link is taken from the parsed page as before.

/// How far the scan got.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The link, decoded.
    Found(String),
    /// Not decided yet: more bytes are needed.
    NotYet,
    /// No link comes before `value`, or the prefix is not the object expected.
    Never,
}

/// Past this many bytes without a decision the scan gives up (control information is short).
const MAX_PREFIX: usize = 64 * 1024;

/// Scans `prefix`, the first bytes of a body, for a top-level `@odata.nextLink` that comes
/// before `value`.
pub(crate) fn next_link(prefix: &[u8]) -> Scan {
    let mut at = 0;
    let scan = scan_object(prefix, &mut at);
    match scan {
        Scan::NotYet if prefix.len() > MAX_PREFIX => Scan::Never,
        other => other,
    }
}

fn scan_object(b: &[u8], at: &mut usize) -> Scan {
    skip_ws(b, at);
    match b.get(*at) {
        None => return Scan::NotYet,
        Some(b'{') => *at += 1,
        Some(_) => return Scan::Never,
    }
    loop {
        skip_ws(b, at);
        match b.get(*at) {
            None => return Scan::NotYet,
            Some(b'}') => return Scan::Never,
            Some(b'"') => {}
            Some(_) => return Scan::Never,
        }
        let key_start = *at;
        let Some(key_end) = string_end(b, *at) else { return Scan::NotYet };
        let key = &b[key_start..key_end];
        *at = key_end;
        skip_ws(b, at);
        match b.get(*at) {
            None => return Scan::NotYet,
            Some(b':') => *at += 1,
            Some(_) => return Scan::Never,
        }
        skip_ws(b, at);
        match key {
            b"\"value\"" => return Scan::Never,
            b"\"@odata.nextLink\"" => {
                if b.get(*at).is_none() {
                    return Scan::NotYet;
                }
                if b[*at] != b'"' {
                    return Scan::Never;
                }
                let Some(end) = string_end(b, *at) else { return Scan::NotYet };
                return match serde_json::from_slice::<String>(&b[*at..end]) {
                    Ok(link) => Scan::Found(link),
                    Err(_) => Scan::Never,
                };
            }
            _ => match value_end(b, *at) {
                Some(end) => *at = end,
                None => return Scan::NotYet,
            },
        }
        skip_ws(b, at);
        match b.get(*at) {
            None => return Scan::NotYet,
            Some(b',') => *at += 1,
            Some(_) => return Scan::Never,
        }
    }
}

fn skip_ws(b: &[u8], at: &mut usize) {
    while b.get(*at).is_some_and(|c| c.is_ascii_whitespace()) {
        *at += 1;
    }
}

/// The index just past the string that starts at `start` (a `"`), if it is complete.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The index just past the value that starts at `start`, if it is complete. Nesting is
/// counted by brackets outside strings; whether it is valid JSON is serde's business later.
fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match b.get(start)? {
        b'"' => string_end(b, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            // A number, true, false or null: up to the next delimiter, which must be there.
            let len = b[start..].iter().position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())?;
            Some(start + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users(id)",
        "@odata.count": 12, "@odata.nextLink":"https://graph.microsoft.com/v1.0/users/delta?$skiptoken=a%2Fb\u0026x=1",
        "value":[{"id":"1"}]}"#;

    #[test]
    fn the_link_before_value_is_found_as_soon_as_it_is_complete() {
        let link = "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=a%2Fb&x=1";
        let end = PAGE.find("\"value\"").unwrap();
        assert_eq!(next_link(&PAGE.as_bytes()[..end]), Scan::Found(link.into()));
        assert_eq!(next_link(PAGE.as_bytes()), Scan::Found(link.into()));
        // Every shorter prefix that cuts the link is undecided, never wrong.
        let link_end = PAGE.find("x=1\"").unwrap() + 4;
        for cut in 0..link_end {
            assert_eq!(next_link(&PAGE.as_bytes()[..cut]), Scan::NotYet, "cut at {cut}");
        }
    }

    #[test]
    fn a_link_after_value_or_inside_it_is_not_taken_early() {
        let after = r#"{"value":[{"id":"1"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/users?$skiptoken=x"}"#;
        assert_eq!(next_link(after.as_bytes()), Scan::Never);
        let nested = r#"{"@odata.context":"c","extra":{"@odata.nextLink":"https://evil.example/x"},"value":[]}"#;
        assert_eq!(next_link(nested.as_bytes()), Scan::Never);
        let in_string = r#"{"note":"\"@odata.nextLink\":\"https://evil.example/x\"","value":[]}"#;
        assert_eq!(next_link(in_string.as_bytes()), Scan::Never);
        let last_page = r#"{"@odata.context":"c","@odata.deltaLink":"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=d","value":[]}"#;
        assert_eq!(next_link(last_page.as_bytes()), Scan::Never);
    }

    #[test]
    fn what_is_not_a_page_gives_up() {
        for body in ["[1,2]", "{\"@odata.nextLink\": 5, \"value\": []}", "{}", "{\"a\" 1}", "<html>"] {
            assert_eq!(next_link(body.as_bytes()), Scan::Never, "{body}");
        }
        let padding = format!("{{\"@odata.context\":\"{}", "x".repeat(MAX_PREFIX + 1));
        assert_eq!(next_link(padding.as_bytes()), Scan::Never);
    }
}
