//! Percent-encoding for the URLs and form bodies we build (RFC 3986 unreserved characters kept).

/// Encodes everything but `A-Z a-z 0-9 - _ . ~`, and `/` when `keep_slash` (local paths).
pub(crate) fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `application/x-www-form-urlencoded` pairs.
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", percent_encode(k, false), percent_encode(v, false))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_is_not_unreserved() {
        assert_eq!(percent_encode("/patients/a b&c=é", true), "/patients/a%20b%26c%3D%C3%A9");
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
        assert_eq!(form_encode(&[("code", "x y"), ("next", "/")]), "code=x%20y&next=%2F");
    }
}
