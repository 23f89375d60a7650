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

/// Decodes `%XX` escapes once (invalid escapes are kept as they are; invalid UTF-8 is replaced).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
        assert_eq!(percent_decode("/a%20b%2F%2fc%zz%4"), "/a b//c%zz%4");
        assert_eq!(percent_decode(&percent_encode("/patients/a b&c=é", true)), "/patients/a b&c=é");
    }
}
