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
/// Stored query id of FindDocuments.
const FIND_DOCUMENTS: &str = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d";
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
            slot("$XDSDocumentEntryPatientId", &[format!("'{}^^^&{}&ISO'", self.ins, self.ins_oid)]),
            slot(
                "$XDSDocumentEntryStatus",
                &[if self.approved_only {
                    "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')".to_string()
                } else {
                    "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved','urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated')"
                        .to_string()
                }],
            ),
            slot("$XDSDocumentEntryTypeCode", &[format!("('{CR_BIO_TYPE_CODE}^^^&2.16.840.1.113883.6.1&ISO')")]),
        ];
        if let Some(from) = &self.created_from {
            slots.push(slot("$XDSDocumentEntryCreationTimeFrom", std::slice::from_ref(from)));
        }
        if let Some(to) = &self.created_to {
            slots.push(slot("$XDSDocumentEntryCreationTimeTo", std::slice::from_ref(to)));
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <soap:Envelope xmlns:soap=\"{SOAP12}\" xmlns:wsa=\"{WSA}\">\
             <soap:Header>\
             <wsa:Action soap:mustUnderstand=\"1\">urn:ihe:iti:2007:RegistryStoredQuery</wsa:Action>\
             <wsa:MessageID>{}</wsa:MessageID>\
             <wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>\
             <wsa:To soap:mustUnderstand=\"1\">{}</wsa:To>\
             <wsse:Security xmlns:wsse=\"{WSSE}\" soap:mustUnderstand=\"1\">{vihf}</wsse:Security>\
             </soap:Header>\
             <soap:Body>\
             <query:AdhocQueryRequest xmlns:query=\"{QUERY}\" xmlns:rim=\"{RIM}\">\
             <query:ResponseOption returnComposedObjects=\"true\" returnType=\"LeafClass\"/>\
             <rim:AdhocQuery id=\"{FIND_DOCUMENTS}\">{}</rim:AdhocQuery>\
             </query:AdhocQueryRequest>\
             </soap:Body></soap:Envelope>",
            escape_text(message_id),
            escape_text(to),
            slots.concat()
        )
    }
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
}

impl XdsError {
    /// Worth retrying later (the registry or the network, not the request).
    pub fn is_transient(&self) -> bool {
        match self {
            XdsError::SoapFault { code, .. } => code.ends_with("Receiver"),
            XdsError::Registry(errors) => errors.iter().any(|e| e.code == "XDSRegistryBusy" || e.code == "XDSRegistryError"),
            XdsError::Malformed(_) => true,
            XdsError::UnknownPatient | XdsError::TooManyResults => false,
        }
    }
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Reads an ITI-18 response (or a SOAP fault) into entries or a typed error.
pub fn parse_find_documents_response(xml: &str) -> Result<FindDocumentsResult, XdsError> {
    let malformed = |e: &dyn std::fmt::Display| XdsError::Malformed(e.to_string());
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    // Open elements (local names), and the current text.
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut status: Option<String> = None;
    let mut entries: Vec<RegistryEntry> = Vec::new();
    let mut errors: Vec<RegistryError> = Vec::new();
    let mut fault_code: Option<String> = None;
    let mut fault_reason: Option<String> = None;
    let mut saw_fault = false;
    // Inside an ExtrinsicObject: the slot being read and its values.
    let mut current_slot: Option<String> = None;
    let mut slot_values: Vec<String> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| malformed(&e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = local(e.name().as_ref()).to_string();
                let mut attrs = std::collections::HashMap::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| malformed(&e))?;
                    let value = a.normalized_value(quick_xml::XmlVersion::Explicit1_0).map_err(|e| malformed(&e))?;
                    attrs.insert(local(a.key.as_ref()).to_string(), value.into_owned());
                }
                let get = |k: &str| attrs.get(k).cloned();
                match name.as_str() {
                    "AdhocQueryResponse" => status = get("status"),
                    "Fault" => saw_fault = true,
                    "ExtrinsicObject" => entries.push(RegistryEntry {
                        entry_uuid: get("id").unwrap_or_default(),
                        status: get("status").unwrap_or_default(),
                        mime_type: get("mimeType"),
                        ..Default::default()
                    }),
                    "Slot" => {
                        current_slot = get("name");
                        slot_values.clear();
                    }
                    "ExternalIdentifier" => {
                        if let Some(entry) = entries.last_mut() {
                            let value = get("value");
                            match get("identificationScheme").as_deref() {
                                Some(UNIQUE_ID_SCHEME) => entry.unique_id = value,
                                Some(PATIENT_ID_SCHEME) => entry.patient_id = value,
                                _ => {}
                            }
                        }
                    }
                    "Classification" => {
                        if get("classificationScheme").as_deref() == Some(TYPE_CODE_SCHEME)
                            && let Some(entry) = entries.last_mut()
                        {
                            entry.type_code = get("nodeRepresentation");
                        }
                    }
                    "RegistryError" => errors.push(RegistryError {
                        code: get("errorCode").unwrap_or_default(),
                        severity: get("severity").unwrap_or_default(),
                        context: get("codeContext").unwrap_or_default(),
                    }),
                    _ => {}
                }
                if !empty {
                    stack.push(name);
                }
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(c) => text.push_str(&c.into_inner()),
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
                if let Some(ch) = ch {
                    text.push(ch);
                }
            }
            Event::End(e) => {
                let name = local(e.name().as_ref()).to_string();
                if stack.pop().as_deref() != Some(name.as_str()) {
                    return Err(XdsError::Malformed(format!("unexpected end of {name}")));
                }
                let parent = stack.last().map(String::as_str);
                match (name.as_str(), parent) {
                    ("Value", Some("ValueList")) if current_slot.is_some() => slot_values.push(text.trim().to_string()),
                    ("Value", Some("Code")) if saw_fault && fault_code.is_none() => fault_code = Some(text.trim().to_string()),
                    ("Text", Some("Reason")) if saw_fault => fault_reason = Some(text.trim().to_string()),
                    ("Slot", _) => {
                        // Slots of the entry itself (not of a classification inside it).
                        if stack.last().map(String::as_str) == Some("ExtrinsicObject")
                            && let (Some(entry), Some(slot)) = (entries.last_mut(), current_slot.take())
                        {
                            let first = slot_values.first().cloned();
                            match slot.as_str() {
                                "repositoryUniqueId" => entry.repository_unique_id = first,
                                "creationTime" => entry.creation_time = first,
                                "size" => entry.size = first.and_then(|s| s.parse().ok()),
                                "hash" => entry.hash = first,
                                _ => {}
                            }
                        }
                        current_slot = None;
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::DocType(_) => return Err(XdsError::Malformed("DOCTYPE refused".into())),
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(XdsError::Malformed("the answer is truncated".into()));
    }
    if saw_fault {
        return Err(XdsError::SoapFault { code: fault_code.unwrap_or_default(), reason: fault_reason.unwrap_or_default() });
    }
    let status = status.ok_or_else(|| XdsError::Malformed("no AdhocQueryResponse".into()))?;
    let (hard, soft): (Vec<_>, Vec<_>) = errors.into_iter().partition(|e| e.severity.ends_with(":Error"));
    match local(&status) {
        "Success" if hard.is_empty() => Ok(FindDocumentsResult { entries, partial: false, warnings: soft }),
        "PartialSuccess" => Ok(FindDocumentsResult { entries, partial: true, warnings: soft.into_iter().chain(hard).collect() }),
        _ if hard.iter().any(|e| e.code == "XDSUnknownPatientId") => Err(XdsError::UnknownPatient),
        _ if hard.iter().any(|e| e.code == "XDSTooManyResults") => Err(XdsError::TooManyResults),
        _ => Err(XdsError::Registry(hard)),
    }
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

    #[test]
    fn the_request_names_the_patient_the_type_and_carries_the_vihf() {
        let xml = query().soap_request(
            "<saml2:Assertion xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_a\"></saml2:Assertion>",
            "urn:uuid:1",
            "https://dmp.test/registry",
        );
        assert!(xml.contains("urn:ihe:iti:2007:RegistryStoredQuery"));
        assert!(xml.contains(FIND_DOCUMENTS));
        assert!(xml.contains("'279035121518989^^^&amp;1.2.250.1.213.1.4.10&amp;ISO'"), "the INS, escaped: {xml}");
        assert!(xml.contains("11502-2^^^&amp;2.16.840.1.113883.6.1&amp;ISO"));
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
