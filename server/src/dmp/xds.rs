//! IHE XDS.b registry queries (ITI-18 Registry Stored Query, FindDocuments) as the DMP speaks
//! them: the SOAP 1.2 request with WS-Addressing and the VIHF in `wsse:Security`, and the
//! reading of the registry's answer into document entries or typed errors.
//!
//! Pure functions (strings in, values out): the HTTP client sends what they build.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
const WSA: &str = "http://www.w3.org/2005/08/addressing";
const WSSE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const QUERY: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0";
const RIM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0";
const XDSB: &str = "urn:ihe:iti:xds-b:2007";
/// Stored query ids of FindDocuments and GetDocuments.
pub const FIND_DOCUMENTS: &str = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d";
pub const GET_DOCUMENTS: &str = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4";
/// ExternalIdentifier schemes of a DocumentEntry.
const UNIQUE_ID_SCHEME: &str = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab";
const PATIENT_ID_SCHEME: &str = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427";
/// Classification scheme of the typeCode.
const TYPE_CODE_SCHEME: &str = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983";
/// The CR-BIO document type (LOINC 11502-2).
pub const CR_BIO_TYPE_CODE: &str = "11502-2";

/// ITI-18 FindDocuments for one patient's CR-BIO reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindDocuments {
    pub ins: String,
    pub ins_oid: String,
    /// `true`: only Approved entries; `false`: Approved and Deprecated (to learn replacements).
    pub approved_only: bool,
    /// Creation-time window, HL7 DTM (`20240101000000`), both ends optional.
    pub created_from: Option<String>,
    pub created_to: Option<String>,
}

/// Text content: `&`, `<`, `>` escaped (stored-query values keep their quotes as they are).
fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Attribute values (always double-quoted here).
fn escape_attr(s: &str) -> String {
    escape_text(s).replace('"', "&quot;")
}

fn slot(name: &str, values: &[String]) -> String {
    let values: String = values.iter().map(|v| format!("<rim:Value>{}</rim:Value>", escape_text(v))).collect();
    format!("<rim:Slot name=\"{}\"><rim:ValueList>{values}</rim:ValueList></rim:Slot>", escape_attr(name))
}

impl FindDocuments {
    /// The SOAP 1.2 envelope: WS-Addressing headers, the signed VIHF, the stored query.
    pub fn soap_request(&self, vihf: &str, message_id: &str, to: &str) -> String {
        let mut slots = vec![
            slot("$XDSDocumentEntryPatientId", &[format!("'{}^^^&{}&ISO^NH'", self.ins, self.ins_oid)]),
            slot(
                "$XDSDocumentEntryStatus",
                &[if self.approved_only {
                    "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')".to_string()
                } else {
                    "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved','urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated')"
                        .to_string()
                }],
            ),
            slot("$XDSDocumentEntryTypeCode", &[format!("('{CR_BIO_TYPE_CODE}^^2.16.840.1.113883.6.1')")]),
        ];
        if let Some(from) = &self.created_from {
            slots.push(slot("$XDSDocumentEntryCreationTimeFrom", std::slice::from_ref(from)));
        }
        if let Some(to) = &self.created_to {
            slots.push(slot("$XDSDocumentEntryCreationTimeTo", std::slice::from_ref(to)));
        }
        stored_query(FIND_DOCUMENTS, &slots.concat(), vihf, message_id, to)
    }
}

/// A Registry Stored Query (ITI-18) in its SOAP envelope.
fn stored_query(query_id: &str, slots: &str, vihf: &str, message_id: &str, to: &str) -> String {
    let body = format!(
        "<query:AdhocQueryRequest xmlns:query=\"{QUERY}\" xmlns:rim=\"{RIM}\">\
         <query:ResponseOption returnComposedObjects=\"true\" returnType=\"LeafClass\"/>\
         <rim:AdhocQuery id=\"{query_id}\">{slots}</rim:AdhocQuery></query:AdhocQueryRequest>"
    );
    soap_envelope("urn:ihe:iti:2007:RegistryStoredQuery", message_id, to, vihf, &body)
}

/// ITI-18 GetDocuments: the entries of these uniqueIds (to refresh what is known of documents
/// already stored: their status, whether they were replaced). The answer reads like
/// FindDocuments'.
pub fn get_documents_request(unique_ids: &[String], vihf: &str, message_id: &str, to: &str) -> String {
    let list = unique_ids.iter().map(|id| format!("'{}'", id.replace('\'', "''"))).collect::<Vec<_>>().join(",");
    stored_query(GET_DOCUMENTS, &slot("$XDSDocumentEntryUniqueId", &[format!("({list})")]), vihf, message_id, to)
}

/// A SOAP 1.2 envelope with the WS-Addressing headers and the VIHF.
pub(crate) fn soap_envelope(action: &str, message_id: &str, to: &str, vihf: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soap:Envelope xmlns:soap=\"{SOAP12}\" xmlns:wsa=\"{WSA}\">\
         <soap:Header>\
         <wsa:Action soap:mustUnderstand=\"1\">{}</wsa:Action>\
         <wsa:MessageID>{}</wsa:MessageID>\
         <wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>\
         <wsa:To soap:mustUnderstand=\"1\">{}</wsa:To>\
         <wsse:Security xmlns:wsse=\"{WSSE}\" soap:mustUnderstand=\"1\">{vihf}</wsse:Security>\
         </soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>",
        escape_text(action),
        escape_text(message_id),
        escape_text(to)
    )
}

/// ITI-43 Retrieve Document Set: the documents to fetch, by repository and uniqueId.
pub fn retrieve_request(documents: &[(String, String)], vihf: &str, message_id: &str, to: &str) -> String {
    let requests: String = documents
        .iter()
        .map(|(repository, unique_id)| {
            format!(
                "<xdsb:DocumentRequest><xdsb:RepositoryUniqueId>{}</xdsb:RepositoryUniqueId>\
                 <xdsb:DocumentUniqueId>{}</xdsb:DocumentUniqueId></xdsb:DocumentRequest>",
                escape_text(repository),
                escape_text(unique_id)
            )
        })
        .collect();
    let body = format!("<xdsb:RetrieveDocumentSetRequest xmlns:xdsb=\"{XDSB}\">{requests}</xdsb:RetrieveDocumentSetRequest>");
    soap_envelope("urn:ihe:iti:2007:RetrieveDocumentSet", message_id, to, vihf, &body)
}

/// One document the registry knows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistryEntry {
    /// The registry's id of the entry (changes when metadata change: never a key).
    pub entry_uuid: String,
    /// The document's uniqueId (the CDA `id`): the key.
    pub unique_id: Option<String>,
    pub patient_id: Option<String>,
    pub repository_unique_id: Option<String>,
    /// `Approved` or `Deprecated` (a replaced version), or the DMP's own statuses.
    pub status: String,
    pub creation_time: Option<String>,
    pub mime_type: Option<String>,
    pub type_code: Option<String>,
    pub size: Option<u64>,
    pub hash: Option<String>,
}

impl RegistryEntry {
    pub fn is_deprecated(&self) -> bool {
        self.status.ends_with(":Deprecated")
    }
}

/// A document's hash as XDS writes it in the registry entry's `hash` slot: SHA-1, lowercase hex
/// (ITI TF-3 4.2.3.2.11).
pub fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest as _;
    sha1::Sha1::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Why retrieved bytes are not the document the registry entry describes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryMismatch {
    #[error("the document does not match its registry entry: {got} bytes, the entry says {expected}")]
    Size { expected: u64, got: u64 },
    #[error("the document does not match its registry entry: its SHA-1 differs from the entry's hash")]
    Hash,
}

impl RegistryEntry {
    /// Whether `bytes` are the document this entry describes: its `size` and `hash` (SHA-1,
    /// hex, compared case-insensitively), each checked when the entry states it (XDS makes both
    /// mandatory; an entry without them cannot be checked, and is not refused for it).
    pub fn check(&self, bytes: &[u8]) -> Result<(), EntryMismatch> {
        if let Some(expected) = self.size
            && expected != bytes.len() as u64
        {
            return Err(EntryMismatch::Size { expected, got: bytes.len() as u64 });
        }
        if let Some(hash) = &self.hash
            && !hash.trim().eq_ignore_ascii_case(&sha1_hex(bytes))
        {
            return Err(EntryMismatch::Hash);
        }
        Ok(())
    }
}

/// One `RegistryError` of the answer (an error, or a warning of a partial success).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    pub code: String,
    pub severity: String,
    pub context: String,
}

/// What FindDocuments returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindDocumentsResult {
    pub entries: Vec<RegistryEntry>,
    /// `true` when the registry answered `PartialSuccess` (some entries may be missing).
    pub partial: bool,
    pub warnings: Vec<RegistryError>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XdsError {
    #[error("SOAP fault {code}: {reason}")]
    SoapFault { code: String, reason: String },
    #[error("the DMP does not know this patient")]
    UnknownPatient,
    #[error("too many documents for one query: narrow the time window")]
    TooManyResults,
    #[error("the registry refused the query: {}", .0.iter().map(|e| e.code.as_str()).collect::<Vec<_>>().join(", "))]
    Registry(Vec<RegistryError>),
    #[error("the registry's answer is not readable: {0}")]
    Malformed(String),
    /// ITI-43: the repository, not the registry, answered (errors say which service to look at).
    #[error("the repository's answer is not readable: {0}")]
    RepositoryMalformed(String),
    #[error("the repository refused the request: {}", .0.iter().map(|e| e.code.as_str()).collect::<Vec<_>>().join(", "))]
    Repository(Vec<RegistryError>),
    /// TD0.2: the patient service acknowledged with an application error (AE) or reject (AR).
    #[error("the DMP's patient service refused the query (acknowledgement {0})")]
    PatientsRefused(String),
    #[error("the DMP's patient service answer (TD0.2) is not readable: {0}")]
    PatientsMalformed(String),
}

impl XdsError {
    /// Worth retrying later (the registry or the network, not the request).
    pub fn is_transient(&self) -> bool {
        match self {
            XdsError::SoapFault { code, .. } => code.ends_with("Receiver"),
            XdsError::Registry(errors) | XdsError::Repository(errors) => {
                errors.iter().any(|e| e.code == "XDSRegistryBusy" || e.code == "XDSRegistryError" || e.code == "XDSRepositoryBusy")
            }
            XdsError::Malformed(_) | XdsError::RepositoryMalformed(_) | XdsError::PatientsMalformed(_) => true,
            XdsError::PatientsRefused(_) => false,
            XdsError::UnknownPatient | XdsError::TooManyResults => false,
        }
    }
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// A small owned XML tree of an answer (local names; answers are small: documents travel as
/// MTOM attachments).
#[derive(Debug, Default)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    /// The text the element holds directly.
    pub text: String,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every descendant with this name, in document order.
    pub fn descendants<'a>(&'a self, name: &'a str) -> Box<dyn Iterator<Item = &'a Node> + 'a> {
        Box::new(self.children.iter().flat_map(move |c| std::iter::once(c).filter(move |c| c.name == name).chain(c.descendants(name))))
    }

    /// The first value of a `rim:Slot` child.
    fn slot(&self, name: &str) -> Option<String> {
        let slot = self.children.iter().find(|c| c.name == "Slot" && c.attr("name") == Some(name))?;
        slot.child("ValueList")?.child("Value").map(|v| v.text.trim().to_string())
    }
}

/// Parses an answer into a [`Node`] tree. Refuses DOCTYPEs, undefined entities, mismatched and
/// unclosed elements (a truncated answer).
pub fn parse_tree(xml: &str) -> Result<Node, XdsError> {
    let malformed = |e: &dyn std::fmt::Display| XdsError::Malformed(e.to_string());
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let event = reader.read_event().map_err(|e| malformed(&e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut node = Node { name: local(e.name().as_ref()).to_string(), ..Default::default() };
                for a in e.attributes() {
                    let a = a.map_err(|e| malformed(&e))?;
                    let value = a.normalized_value(quick_xml::XmlVersion::Explicit1_0).map_err(|e| malformed(&e))?;
                    node.attrs.push((local(a.key.as_ref()).to_string(), value.into_owned()));
                }
                if matches!(event, Event::Empty(_)) {
                    stack.last_mut().expect("the document node").children.push(node);
                } else {
                    stack.push(node);
                }
            }
            Event::Text(t) => stack.last_mut().expect("the document node").text.push_str(&t.xml10_content()),
            Event::CData(c) => stack.last_mut().expect("the document node").text.push_str(&c.into_inner()),
            Event::GeneralRef(r) => {
                let ch = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| malformed(&e))?
                } else {
                    match r.xml10_content().as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        other => return Err(XdsError::Malformed(format!("undefined entity &{other};"))),
                    }
                };
                stack.last_mut().expect("the document node").text.extend(ch);
            }
            Event::End(e) => {
                let name = local(e.name().as_ref()).to_string();
                let node = stack.pop().filter(|n| n.name == name && !stack.is_empty());
                let Some(node) = node else { return Err(XdsError::Malformed(format!("unexpected end of {name}"))) };
                stack.last_mut().expect("the document node").children.push(node);
            }
            Event::DocType(_) => return Err(XdsError::Malformed("DOCTYPE refused".into())),
            Event::Eof => break,
            _ => {}
        }
    }
    let document = stack.pop().filter(|_| stack.is_empty()).ok_or_else(|| XdsError::Malformed("the answer is truncated".into()))?;
    document.children.into_iter().next().ok_or_else(|| XdsError::Malformed("an empty answer".into()))
}

/// The SOAP fault an answer carries, if any.
pub(crate) fn soap_fault(root: &Node) -> Option<XdsError> {
    let fault = root.descendants("Fault").next()?;
    let code = fault.child("Code").and_then(|c| c.child("Value")).map(|v| v.text.trim().to_string()).unwrap_or_default();
    let reason = fault.child("Reason").and_then(|r| r.child("Text")).map(|t| t.text.trim().to_string()).unwrap_or_default();
    Some(XdsError::SoapFault { code, reason })
}

/// What an answer says about itself: a SOAP fault, or the status of its AdhocQueryResponse /
/// RegistryResponse with its RegistryErrors. `Ok((partial, warnings))` on (partial) success.
fn outcome(root: &Node) -> Result<(bool, Vec<RegistryError>), XdsError> {
    if let Some(fault) = soap_fault(root) {
        return Err(fault);
    }
    let status = root
        .descendants("AdhocQueryResponse")
        .chain(root.descendants("RegistryResponse"))
        .find_map(|n| n.attr("status"))
        .ok_or_else(|| XdsError::Malformed("no registry response status".into()))?;
    let errors: Vec<RegistryError> = root
        .descendants("RegistryError")
        .map(|e| RegistryError {
            code: e.attr("errorCode").unwrap_or_default().to_string(),
            severity: e.attr("severity").unwrap_or_default().to_string(),
            context: e.attr("codeContext").unwrap_or_default().to_string(),
        })
        .collect();
    let (hard, soft): (Vec<_>, Vec<_>) = errors.into_iter().partition(|e| e.severity.ends_with(":Error"));
    match local(status) {
        "Success" if hard.is_empty() => Ok((false, soft)),
        "PartialSuccess" => Ok((true, soft.into_iter().chain(hard).collect())),
        _ if hard.iter().any(|e| e.code == "XDSUnknownPatientId") => Err(XdsError::UnknownPatient),
        _ if hard.iter().any(|e| e.code == "XDSTooManyResults") => Err(XdsError::TooManyResults),
        _ => Err(XdsError::Registry(hard)),
    }
}

/// One document an ITI-43 answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievedDocument {
    pub repository_unique_id: Option<String>,
    pub unique_id: String,
    pub mime_type: Option<String>,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveResult {
    pub documents: Vec<RetrievedDocument>,
    pub partial: bool,
    pub warnings: Vec<RegistryError>,
}

/// Reads an ITI-43 answer: MTOM (`multipart/related`, documents as XOP attachments) or plain
/// SOAP (documents inline in base64).
pub fn parse_retrieve_response(content_type: &str, body: &[u8]) -> Result<RetrieveResult, XdsError> {
    // The same readers as the registry's answers; the errors name the repository.
    read_retrieve_response(content_type, body).map_err(|e| match e {
        XdsError::Malformed(why) => XdsError::RepositoryMalformed(why),
        XdsError::Registry(errors) => XdsError::Repository(errors),
        other => other,
    })
}

fn read_retrieve_response(content_type: &str, body: &[u8]) -> Result<RetrieveResult, XdsError> {
    use base64::Engine as _;
    let multipart = if content_type.trim_start().to_ascii_lowercase().starts_with("multipart/") {
        Some(super::mtom::parse(content_type, body).map_err(|e| XdsError::Malformed(e.to_string()))?)
    } else {
        None
    };
    let soap = match &multipart {
        Some(m) => &m.root.body[..],
        None => body,
    };
    let soap = std::str::from_utf8(soap).map_err(|_| XdsError::Malformed("the SOAP part is not UTF-8".into()))?;
    let root = parse_tree(soap)?;
    let (partial, warnings) = outcome(&root)?;
    let mut documents = Vec::new();
    for response in root.descendants("DocumentResponse") {
        let text = |name: &str| response.child(name).map(|n| n.text.trim().to_string()).filter(|t| !t.is_empty());
        let unique_id =
            text("DocumentUniqueId").ok_or_else(|| XdsError::Malformed("a DocumentResponse without DocumentUniqueId".into()))?;
        let document = response.child("Document").ok_or_else(|| XdsError::Malformed(format!("no Document for {unique_id}")))?;
        let bytes = match document.child("Include").and_then(|i| i.attr("href")) {
            Some(href) => multipart
                .as_ref()
                .and_then(|m| m.by_cid(href))
                .map(|p| p.body.clone())
                .ok_or_else(|| XdsError::Malformed(format!("the attachment {href} is missing")))?,
            None => {
                let b64: String = document.text.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| XdsError::Malformed(format!("base64 of {unique_id}: {e}")))?
            }
        };
        documents.push(RetrievedDocument {
            repository_unique_id: text("RepositoryUniqueId"),
            unique_id,
            mime_type: text("mimeType"),
            bytes,
        });
    }
    Ok(RetrieveResult { documents, partial, warnings })
}

/// Reads an ITI-18 response (or a SOAP fault) into entries or a typed error.
pub fn parse_find_documents_response(xml: &str) -> Result<FindDocumentsResult, XdsError> {
    let root = parse_tree(xml)?;
    let (partial, warnings) = outcome(&root)?;
    let entries = root
        .descendants("ExtrinsicObject")
        .map(|o| {
            let identifier = |scheme: &str| {
                o.children
                    .iter()
                    .find(|c| c.name == "ExternalIdentifier" && c.attr("identificationScheme") == Some(scheme))
                    .and_then(|c| c.attr("value"))
                    .map(str::to_string)
            };
            RegistryEntry {
                entry_uuid: o.attr("id").unwrap_or_default().to_string(),
                unique_id: identifier(UNIQUE_ID_SCHEME),
                patient_id: identifier(PATIENT_ID_SCHEME),
                repository_unique_id: o.slot("repositoryUniqueId"),
                status: o.attr("status").unwrap_or_default().to_string(),
                creation_time: o.slot("creationTime"),
                mime_type: o.attr("mimeType").map(str::to_string),
                type_code: o
                    .children
                    .iter()
                    .find(|c| c.name == "Classification" && c.attr("classificationScheme") == Some(TYPE_CODE_SCHEME))
                    .and_then(|c| c.attr("nodeRepresentation"))
                    .map(str::to_string),
                size: o.slot("size").and_then(|s| s.parse().ok()),
                hash: o.slot("hash"),
            }
        })
        .collect();
    Ok(FindDocumentsResult { entries, partial, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> FindDocuments {
        FindDocuments {
            ins: "279035121518989".into(),
            ins_oid: "1.2.250.1.213.1.4.10".into(),
            approved_only: false,
            created_from: Some("20160101000000".into()),
            created_to: None,
        }
    }

    fn retrieve_answer(include: bool) -> String {
        let document = if include {
            r#"<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:doc1@bioviewer"/>"#.to_string()
        } else {
            "PENsaW5pY2FsRG9jdW1lbnQvPg==".to_string()
        };
        format!(
            r#"<s:Envelope xmlns:s="{SOAP12}"><s:Body><xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{XDSB}">
<rs:RegistryResponse xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"/>
<xdsb:DocumentResponse><xdsb:RepositoryUniqueId>1.2.250.1.213.1.1.1.2</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>1.2.3^doc.1</xdsb:DocumentUniqueId><xdsb:mimeType>text/xml</xdsb:mimeType><xdsb:Document>{document}</xdsb:Document></xdsb:DocumentResponse>
</xdsb:RetrieveDocumentSetResponse></s:Body></s:Envelope>"#
        )
    }

    #[test]
    fn documents_are_read_from_mtom_attachments_and_from_inline_base64() {
        let cda = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\r\n\xc3\xa9</ClinicalDocument>".to_vec();
        let (content_type, body) =
            crate::dmp::mtom::build("b0undary", &retrieve_answer(true), &[("doc1@bioviewer".into(), "text/xml".into(), cda.clone())]);
        let result = parse_retrieve_response(&content_type, &body).unwrap();
        assert_eq!(result.documents.len(), 1);
        assert_eq!(result.documents[0].unique_id, "1.2.3^doc.1");
        assert_eq!(result.documents[0].bytes, cda, "byte for byte");
        let inline = parse_retrieve_response("application/soap+xml", retrieve_answer(false).as_bytes()).unwrap();
        assert_eq!(inline.documents[0].bytes, b"<ClinicalDocument/>");
        // An Include whose attachment is missing, a truncated MTOM message: errors, retryable.
        let (content_type, body) = crate::dmp::mtom::build("b0undary", &retrieve_answer(true), &[]);
        assert!(matches!(parse_retrieve_response(&content_type, &body), Err(XdsError::RepositoryMalformed(_))));
        let (content_type, body) =
            crate::dmp::mtom::build("b0undary", &retrieve_answer(true), &[("doc1@bioviewer".into(), "text/xml".into(), cda)]);
        let cut = parse_retrieve_response(&content_type, &body[..body.len() - 30]).unwrap_err();
        assert!(cut.is_transient(), "{cut}");
    }

    #[test]
    fn an_entry_checks_the_size_and_the_sha1_hex_hash_of_retrieved_bytes() {
        // FIPS 180 test vector.
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let entry = RegistryEntry { size: Some(3), hash: Some("A9993E364706816ABA3E25717850C26C9CD0D89D".into()), ..Default::default() };
        assert_eq!(entry.check(b"abc"), Ok(()), "hex compared case-insensitively");
        assert_eq!(entry.check(b"abd"), Err(EntryMismatch::Hash));
        assert_eq!(entry.check(b"abcd"), Err(EntryMismatch::Size { expected: 3, got: 4 }));
        assert_eq!(RegistryEntry::default().check(b"anything"), Ok(()), "nothing stated, nothing to compare");
    }

    #[test]
    fn the_retrieve_request_lists_every_document() {
        let xml =
            retrieve_request(&[("r1".into(), "u1".into()), ("r1".into(), "u&2".into())], "", "urn:uuid:2", "https://dmp.test/repository");
        assert!(xml.contains("urn:ihe:iti:2007:RetrieveDocumentSet"));
        assert_eq!(xml.matches("<xdsb:DocumentRequest>").count(), 2);
        assert!(xml.contains("<xdsb:DocumentUniqueId>u&amp;2</xdsb:DocumentUniqueId>"));
        assert!(parse_tree(&xml).is_ok(), "well-formed");
    }

    #[test]
    fn the_request_names_the_patient_the_type_and_carries_the_vihf() {
        let xml = query().soap_request(
            "<saml2:Assertion xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_a\"></saml2:Assertion>",
            "urn:uuid:1",
            "https://dmp.test/registry",
        );
        assert!(xml.contains("urn:ihe:iti:2007:RegistryStoredQuery"));
        assert!(xml.contains(FIND_DOCUMENTS));
        assert!(xml.contains("'279035121518989^^^&amp;1.2.250.1.213.1.4.10&amp;ISO^NH'"), "the INS, escaped: {xml}");
        assert!(xml.contains("('11502-2^^2.16.840.1.113883.6.1')"));
        assert!(xml.contains("StatusType:Deprecated"), "replacements are asked for");
        assert!(xml.contains("$XDSDocumentEntryCreationTimeFrom") && !xml.contains("CreationTimeTo"));
        assert!(xml.contains("<wsse:Security") && xml.contains("ID=\"_a\""));
        // Well-formed: our own reader goes through it.
        let mut reader = Reader::from_str(&xml);
        loop {
            match reader.read_event().unwrap() {
                Event::Eof => break,
                _ => continue,
            }
        }
    }

    fn entry(uuid: &str, unique: &str, status: &str) -> String {
        format!(
            r#"<rim:ExtrinsicObject id="{uuid}" mimeType="text/xml" status="urn:oasis:names:tc:ebxml-regrep:StatusType:{status}" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
  <rim:Slot name="creationTime"><rim:ValueList><rim:Value>20240105081200</rim:Value></rim:ValueList></rim:Slot>
  <rim:Slot name="repositoryUniqueId"><rim:ValueList><rim:Value>1.2.250.1.213.1.1.1.2</rim:Value></rim:ValueList></rim:Slot>
  <rim:Slot name="size"><rim:ValueList><rim:Value>48213</rim:Value></rim:ValueList></rim:Slot>
  <rim:Classification classificationScheme="{TYPE_CODE_SCHEME}" nodeRepresentation="11502-2" classifiedObject="{uuid}" id="c-{uuid}">
    <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.6.1</rim:Value></rim:ValueList></rim:Slot>
  </rim:Classification>
  <rim:ExternalIdentifier identificationScheme="{PATIENT_ID_SCHEME}" value="279035121518989^^^&amp;1.2.250.1.213.1.4.10&amp;ISO" id="p-{uuid}" registryObject="{uuid}"/>
  <rim:ExternalIdentifier identificationScheme="{UNIQUE_ID_SCHEME}" value="{unique}" id="u-{uuid}" registryObject="{uuid}"/>
</rim:ExtrinsicObject>"#
        )
    }

    fn response(status: &str, body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{SOAP12}"><s:Body>
<query:AdhocQueryResponse xmlns:query="{QUERY}" xmlns:rim="{RIM}" xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:{status}">
{body}
</query:AdhocQueryResponse></s:Body></s:Envelope>"#
        )
    }

    #[test]
    fn entries_are_read_with_their_keys_and_status() {
        let body = format!(
            "<rim:RegistryObjectList>{}{}</rim:RegistryObjectList>",
            entry("urn:uuid:e1", "1.2.3^doc.1", "Deprecated"),
            entry("urn:uuid:e2", "1.2.3^doc.2", "Approved")
        );
        let result = parse_find_documents_response(&response("Success", &body)).unwrap();
        assert_eq!(result.entries.len(), 2);
        assert!(!result.partial);
        let first = &result.entries[0];
        assert_eq!(first.unique_id.as_deref(), Some("1.2.3^doc.1"));
        assert!(first.is_deprecated() && !result.entries[1].is_deprecated());
        assert_eq!(first.repository_unique_id.as_deref(), Some("1.2.250.1.213.1.1.1.2"));
        assert_eq!(first.creation_time.as_deref(), Some("20240105081200"));
        assert_eq!(first.size, Some(48213));
        assert_eq!(first.type_code.as_deref(), Some("11502-2"));
        assert_eq!(first.patient_id.as_deref(), Some("279035121518989^^^&1.2.250.1.213.1.4.10&ISO"), "entities resolved");
    }

    #[test]
    fn registry_errors_become_typed_errors() {
        let error = |code: &str| {
            format!(
                r#"<rs:RegistryErrorList highestSeverity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"><rs:RegistryError errorCode="{code}" severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error" codeContext="context"/></rs:RegistryErrorList>"#
            )
        };
        assert_eq!(parse_find_documents_response(&response("Failure", &error("XDSUnknownPatientId"))), Err(XdsError::UnknownPatient));
        assert_eq!(parse_find_documents_response(&response("Failure", &error("XDSTooManyResults"))), Err(XdsError::TooManyResults));
        let busy = parse_find_documents_response(&response("Failure", &error("XDSRegistryBusy"))).unwrap_err();
        assert!(busy.is_transient() && !XdsError::UnknownPatient.is_transient());
    }

    #[test]
    fn a_partial_success_keeps_its_entries_and_says_so() {
        let body = format!(
            r#"<rs:RegistryErrorList><rs:RegistryError errorCode="XDSRegistryError" severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning" codeContext="one community did not answer"/></rs:RegistryErrorList><rim:RegistryObjectList>{}</rim:RegistryObjectList>"#,
            entry("urn:uuid:e1", "1.2.3^doc.1", "Approved")
        );
        let result = parse_find_documents_response(&response("PartialSuccess", &body)).unwrap();
        assert!(result.partial);
        assert_eq!(result.entries.len(), 1);
        assert_eq!(result.warnings[0].context, "one community did not answer");
    }

    #[test]
    fn soap_faults_truncation_and_doctype_are_errors() {
        let fault = format!(
            r#"<s:Envelope xmlns:s="{SOAP12}"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang="fr">Service indisponible</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#
        );
        let error = parse_find_documents_response(&fault).unwrap_err();
        assert_eq!(error, XdsError::SoapFault { code: "s:Receiver".into(), reason: "Service indisponible".into() });
        assert!(error.is_transient());
        let full =
            response("Success", &format!("<rim:RegistryObjectList>{}</rim:RegistryObjectList>", entry("urn:uuid:e1", "u", "Approved")));
        for cut in [full.len() / 3, full.len() / 2, full.len() - 20] {
            assert!(matches!(parse_find_documents_response(&full[..cut]), Err(XdsError::Malformed(_))), "cut at {cut}");
        }
        assert!(matches!(parse_find_documents_response("<!DOCTYPE x [<!ENTITY a 'b'>]><x/>"), Err(XdsError::Malformed(_))));
        assert!(matches!(parse_find_documents_response("not xml at all"), Err(XdsError::Malformed(_))));
    }
}
