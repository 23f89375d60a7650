//! Multipart messages: MTOM/XOP (`multipart/related`: the SOAP part and its binary
//! attachments, both ways: the client reads ITI-43 answers, the simulator writes them). The
//! upload form's `multipart/form-data` is split by `multer` (`http::upload`), with its limits.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MtomError {
    #[error("not a multipart message, or no boundary: {0}")]
    NotMultipart(String),
    #[error("the message is truncated (no closing boundary)")]
    Truncated,
    #[error("a part has no header/body separator")]
    MalformedPart,
    #[error("no SOAP part")]
    NoRoot,
}

/// One part: its Content-ID (without `<>`), Content-Type, and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub content_id: Option<String>,
    pub content_type: Option<String>,
    /// `multipart/form-data`: the field's name and the file's name.
    pub field: Option<String>,
    pub filename: Option<String>,
    pub body: Vec<u8>,
}

/// A parsed message: the SOAP part first, then the attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    pub root: Part,
    pub attachments: Vec<Part>,
}

impl Multipart {
    /// The attachment an `xop:Include href="cid:…"` points to.
    pub fn by_cid(&self, href: &str) -> Option<&Part> {
        let id = href.strip_prefix("cid:").unwrap_or(href);
        let id = percent_decode(id);
        self.attachments.iter().find(|p| p.content_id.as_deref() == Some(id.as_str()))
    }
}

/// `cid:` URLs percent-encode the Content-ID (RFC 2392).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parameter of a header value (`boundary="x"`, `start=<a@b>`).
fn parameter(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Linear time whatever the boundary (memchr's two-way search): comparing the boundary at
/// every position cost seconds on a 32 KB boundary with a body of near-matches.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    memchr::memmem::find(&haystack[from..], needle).map(|p| p + from)
}

fn parse_part(raw: &[u8]) -> Result<Part, MtomError> {
    let split = find(raw, b"\r\n\r\n", 0).ok_or(MtomError::MalformedPart)?;
    let headers = String::from_utf8_lossy(&raw[..split]);
    let mut part = Part { content_id: None, content_type: None, field: None, filename: None, body: raw[split + 4..].to_vec() };
    for line in headers.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else { continue };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-id" => part.content_id = Some(value.trim().trim_start_matches('<').trim_end_matches('>').to_string()),
            "content-type" => part.content_type = Some(value.trim().to_string()),
            "content-disposition" => {
                let value = format!("x;{}", value.split_once(';').map(|(_, p)| p).unwrap_or(""));
                part.field = parameter(&value, "name");
                part.filename = parameter(&value, "filename");
            }
            _ => {}
        }
    }
    Ok(part)
}

/// Splits a multipart body. The root is the part named by `start`, else the first.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Multipart, MtomError> {
    if !content_type.trim_start().to_ascii_lowercase().starts_with("multipart/") {
        return Err(MtomError::NotMultipart(content_type.to_string()));
    }
    let boundary =
        parameter(content_type, "boundary").filter(|b| !b.is_empty()).ok_or_else(|| MtomError::NotMultipart(content_type.to_string()))?;
    let delimiter = format!("--{boundary}");
    let first = find(body, delimiter.as_bytes(), 0).ok_or(MtomError::Truncated)?;
    let mut parts = Vec::new();
    let mut position = first + delimiter.len();
    loop {
        // After a delimiter: `--` closes the message, CRLF starts a part.
        if body[position..].starts_with(b"--") {
            break;
        }
        let start = position + if body[position..].starts_with(b"\r\n") { 2 } else { return Err(MtomError::MalformedPart) };
        let next = find(body, format!("\r\n{delimiter}").as_bytes(), start).ok_or(MtomError::Truncated)?;
        parts.push(parse_part(&body[start..next])?);
        position = next + 2 + delimiter.len();
        if position >= body.len() {
            return Err(MtomError::Truncated);
        }
    }
    let start = parameter(content_type, "start").map(|s| s.trim_start_matches('<').trim_end_matches('>').to_string());
    let root_index = start.and_then(|s| parts.iter().position(|p| p.content_id.as_deref() == Some(s.as_str()))).unwrap_or(0);
    if parts.is_empty() {
        return Err(MtomError::NoRoot);
    }
    let root = parts.remove(root_index);
    Ok(Multipart { root, attachments: parts })
}

/// Writes an MTOM message: the SOAP part (XOP-packaged) and the attachments
/// `(content_id, content_type, bytes)`. Returns the Content-Type header and the body.
pub fn build(boundary: &str, soap: &str, attachments: &[(String, String, Vec<u8>)]) -> (String, Vec<u8>) {
    let root_id = "root.message@bioviewer";
    let content_type = format!(
        "multipart/related; type=\"application/xop+xml\"; boundary=\"{boundary}\"; start=\"<{root_id}>\"; start-info=\"application/soap+xml\""
    );
    let mut body = Vec::with_capacity(soap.len() + attachments.iter().map(|a| a.2.len() + 200).sum::<usize>() + 300);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\n\
             Content-Transfer-Encoding: binary\r\nContent-ID: <{root_id}>\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(soap.as_bytes());
    for (id, content_type, bytes) in attachments {
        body.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{id}>\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (content_type, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> (String, Vec<u8>) {
        // A document whose bytes contain CRLFs and a near-boundary: only the full delimiter splits.
        let document = b"<ClinicalDocument>\r\n--MIMEBoundary_no\r\n</ClinicalDocument>".to_vec();
        build("MIMEBoundary_abc", "<soap:Envelope/>", &[("doc1@bioviewer".into(), "text/xml".into(), document)])
    }

    #[test]
    fn a_message_reads_back_with_its_attachment_byte_for_byte() {
        let (content_type, body) = message();
        let parsed = parse(&content_type, &body).unwrap();
        assert_eq!(parsed.root.body, b"<soap:Envelope/>");
        assert_eq!(parsed.root.content_id.as_deref(), Some("root.message@bioviewer"));
        let doc = parsed.by_cid("cid:doc1%40bioviewer").expect("found by a percent-encoded cid");
        assert_eq!(doc.body, b"<ClinicalDocument>\r\n--MIMEBoundary_no\r\n</ClinicalDocument>");
        assert_eq!(doc.content_type.as_deref(), Some("text/xml"));
    }

    #[test]
    fn truncated_or_foreign_messages_are_refused() {
        let (content_type, body) = message();
        for cut in [body.len() - 5, body.len() / 2, 30] {
            assert!(parse(&content_type, &body[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(parse("application/soap+xml", &body), Err(MtomError::NotMultipart(_))));
        assert!(matches!(parse("multipart/related", &body), Err(MtomError::NotMultipart(_))));
    }

    #[test]
    fn a_32_kb_boundary_with_near_matches_is_split_in_linear_time() {
        // Runs of one dash more than the boundary, broken by an `x`: a naive search compares
        // ~16 KB at each of four million positions.
        let boundary = "-".repeat(32 * 1024);
        let mut run = "-".repeat(32 * 1024 + 1).into_bytes();
        run.push(b'x');
        let body: Vec<u8> = run.iter().copied().cycle().take(4 * 1024 * 1024).collect();
        let started = std::time::Instant::now();
        assert!(parse(&format!("multipart/related; boundary=\"{boundary}\""), &body).is_err());
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "took {:?}", started.elapsed());
    }

    #[test]
    fn form_uploads_give_their_fields_and_file_names() {
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntoken\r\n--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cr.xml\"\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n--xyz--\r\n";
        let form = parse("multipart/form-data; boundary=xyz", body).unwrap();
        assert_eq!((form.root.field.as_deref(), form.root.body.as_slice()), (Some("csrf"), &b"token"[..]));
        assert_eq!(form.attachments[0].filename.as_deref(), Some("cr.xml"));
        assert_eq!(form.attachments[0].body, b"<a/>");
    }
}
