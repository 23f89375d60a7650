//! A DMP simulator: an XDS.b registry and repository over HTTP that indexes the CDA documents
//! of a folder by their headers and answers ITI-18 (FindDocuments) and ITI-43 (Retrieve
//! Document Set, MTOM) as the DMP would, VIHF checks included, with injectable faults for the
//! reliability tests. `bioviewer dmp-sim --corpus DIR [--listen ADDR]`; `make run` embeds it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::mtom;
use super::xds::{Node, parse_tree, sha1_hex};

/// One document the simulated DMP holds.
#[derive(Debug, Clone)]
pub struct SimDocument {
    pub unique_id: String,
    pub patient_ins: String,
    pub patient_oid: String,
    pub set_id: Option<String>,
    pub version: u32,
    pub creation_time: String,
    pub deprecated: bool,
    pub bytes: Arc<Vec<u8>>,
}

/// Faults to inject, for the reliability tests.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Added to every answer.
    pub latency: Duration,
    /// Every n-th request fails with a SOAP Receiver fault (0: never).
    pub fail_every: u64,
    /// Every answer is a SOAP fault.
    pub always_fault: bool,
    /// MTOM answers are cut in half.
    pub truncate_mtom: bool,
    /// Answers are sent in small chunks, this far apart.
    pub drip: Option<Duration>,
    /// The registry lists every entry twice, under two entryUUIDs and one uniqueId (the national
    /// example set has documents sharing a CDA id).
    pub duplicate_entries: bool,
    /// The repository alters one byte of one document (the one with the smallest uniqueId), so
    /// that it no longer matches the hash and size its registry entry announces.
    pub corrupt_one: bool,
}

/// What the DMP learnt when it moved from the INS-C to the INS: the INS (and its OID) each
/// INS-C belongs to. Read from the `identities.tsv` that `bioviewer demo-data` writes beside the
/// documents (`INS-C<TAB>INS<TAB>INS OID`, `#` comments).
#[derive(Debug, Clone, Default)]
pub struct LegacyIdentities(HashMap<String, (String, String)>);

impl LegacyIdentities {
    pub fn from_tsv(text: &str) -> LegacyIdentities {
        let rows = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).filter_map(|line| {
            let mut fields = line.split('\t').map(str::trim);
            let (ins_c, ins, oid) = (fields.next()?, fields.next()?, fields.next()?);
            Some((ins_c.to_string(), (ins.to_string(), oid.to_string())))
        });
        LegacyIdentities(rows.collect())
    }

    /// The INS and its OID of an INS-C.
    pub fn ins_of(&self, ins_c: &str) -> Option<&(String, String)> {
        self.0.get(ins_c)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The INS under which the DMP files a document: the INS its header gives (15 characters,
/// number and key, under an INS authority), else the INS its INS-C belongs to. A 13-digit NIR
/// without key is not an INS (never completed by guessing its key).
fn registry_patient(patient: &bioviewer_core::cda::Patient, identities: &LegacyIdentities) -> Option<(String, String)> {
    use bioviewer_core::cda::oid;
    let ins = [oid::INS_NIR, oid::INS_NIA, oid::INS_NIR_TEST, oid::INS_NIR_DEMO]
        .iter()
        .find_map(|root| patient.ids.iter().find(|id| id.root == *root && id.extension.as_ref().is_some_and(|e| e.len() == 15)));
    match ins {
        Some(id) => Some((id.extension.clone()?, id.root.clone())),
        None => patient
            .ids
            .iter()
            .filter(|id| oid::INS_C.contains(&id.root.as_str()))
            .find_map(|id| identities.ins_of(id.extension.as_deref()?).cloned()),
    }
}

pub struct Simulator {
    documents: Vec<SimDocument>,
    faults: Faults,
    requests: AtomicU64,
}

const REPOSITORY: &str = "1.2.250.1.213.1.1.1.2";

impl Simulator {
    /// Indexes every readable CDA document under `dir` (others are skipped, with a count).
    /// `dir/identities.tsv`, when present, says which INS each INS-C belongs to, so that reports
    /// of the INS-C era are filed under the INS, as the DMP did after its identity migration.
    pub fn from_folder(dir: &Path, faults: Faults) -> std::io::Result<(Simulator, usize)> {
        let identities_file = dir.join(bioviewer_core::demo::IDENTITIES_FILE);
        let identities = match std::fs::read_to_string(&identities_file) {
            Ok(text) => LegacyIdentities::from_tsv(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LegacyIdentities::default(),
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path)? {
                    pending.push(entry?.path());
                }
            } else if path != identities_file {
                files.push(path);
            }
        }
        files.sort();
        let mut skipped = 0;
        let mut documents = Vec::new();
        for file in files {
            let bytes = std::fs::read(&file)?;
            match Self::index(bytes, &identities) {
                Some(d) => documents.push(d),
                None => skipped += 1,
            }
        }
        Ok((Simulator::new(documents, faults), skipped))
    }

    /// The registry's view of one document, from its header; `None` when it names no patient
    /// the DMP could file it under (see `registry_patient`).
    pub fn index(bytes: Vec<u8>, identities: &LegacyIdentities) -> Option<SimDocument> {
        let report = bioviewer_core::cda::parse(&bytes).ok()?;
        let header = &report.header;
        let (patient_ins, patient_oid) = registry_patient(header.patient.as_ref()?, identities)?;
        Some(SimDocument {
            unique_id: header.id.as_ref()?.to_string(),
            patient_ins,
            patient_oid,
            set_id: header.set_id.as_ref().map(ToString::to_string),
            version: header.version_number.unwrap_or(1),
            creation_time: header
                .effective_time
                .map(|t| t.to_string().chars().filter(char::is_ascii_digit).take(14).collect())
                .unwrap_or_default(),
            deprecated: false,
            bytes: Arc::new(bytes),
        })
    }

    pub fn new(mut documents: Vec<SimDocument>, faults: Faults) -> Simulator {
        // Older versions of a set are Deprecated, as the DMP marks replaced documents.
        let mut newest: HashMap<String, u32> = HashMap::new();
        for d in &documents {
            if let Some(set) = &d.set_id {
                let v = newest.entry(set.clone()).or_insert(d.version);
                *v = (*v).max(d.version);
            }
        }
        for d in &mut documents {
            d.deprecated = d.set_id.as_ref().is_some_and(|s| newest.get(s).is_some_and(|v| *v > d.version));
        }
        // The same bytes twice (the corpus repeats itself) are one document.
        let mut seen = std::collections::HashSet::new();
        documents.retain(|d| seen.insert(d.unique_id.clone()));
        Simulator { documents, faults, requests: AtomicU64::new(0) }
    }

    pub fn documents(&self) -> &[SimDocument] {
        &self.documents
    }

    /// Requests received so far (a test checks that a refused sync asked nothing).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/dmp/patients", post(patients))
            .route("/dmp/registry", post(registry))
            .route("/dmp/repository", post(repository))
            .with_state(self)
    }
}

fn soap_fault(code: &str, reason: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Body>\
         <soap:Fault><soap:Code><soap:Value>soap:{code}</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang=\"fr\">{reason}</soap:Text></soap:Reason></soap:Fault>\
         </soap:Body></soap:Envelope>"
    );
    let status = if code == "Sender" { StatusCode::BAD_REQUEST } else { StatusCode::INTERNAL_SERVER_ERROR };
    (status, [(header::CONTENT_TYPE, "application/soap+xml; charset=UTF-8")], body).into_response()
}

fn registry_failure(code: &str, context: &str) -> String {
    format!(
        "<rs:RegistryErrorList highestSeverity=\"urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error\"><rs:RegistryError errorCode=\"{code}\" \
         severity=\"urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error\" codeContext=\"{context}\"/></rs:RegistryErrorList>"
    )
}

fn soap(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

/// A stable registry id per document (the real DMP's change with metadata: never a key).
fn entry_uuid(unique_id: &str) -> String {
    use sha2::Digest;
    let h: String = sha2::Sha256::digest(unique_id.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("urn:uuid:{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The patient a VIHF names, if it is well formed (the attributes the DMP requires).
#[allow(clippy::result_large_err)] // the refusal is the SOAP fault answer itself
fn vihf_patient(envelope: &Node) -> Result<String, Response> {
    let assertion = envelope.descendants("Security").next().and_then(|s| s.child("Assertion"));
    let Some(assertion) = assertion else { return Err(soap_fault("Sender", "VIHF absent")) };
    let attribute = |name: &str| {
        assertion
            .descendants("Attribute")
            .find(|a| a.attr("Name") == Some(name))
            .and_then(|a| a.child("AttributeValue"))
            .map(|v| (v.text.trim().to_string(), v.children.first().and_then(|c| c.attr("code")).map(str::to_string)))
    };
    let required = [
        "VIHF_Version",
        "Identifiant_Structure",
        "Authentification_Mode",
        "urn:oasis:names:tc:xspa:1.0:subject:subject-id",
        "urn:oasis:names:tc:xacml:2.0:subject:role",
        "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
        "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
    ];
    if required.iter().any(|name| attribute(name).is_none())
        || assertion.descendants("NameID").next().is_none_or(|n| n.text.trim().is_empty())
        || assertion.descendants("Signature").next().is_none()
    {
        return Err(soap_fault("Sender", "VIHF mal formé"));
    }
    // The DMP reads for DIRECTE (CPS card) and INDIRECTE_RENFORCEE (AIR) only; the simulator
    // also lets INDIRECTE (a password account) read, for the demo's password accounts: the
    // client offers that mode to the simulator only (`Requester::for_reading`).
    let mode = attribute("Authentification_Mode").map(|(text, _)| text).unwrap_or_default();
    if !matches!(mode.as_str(), "DIRECTE" | "INDIRECTE_RENFORCEE" | "INDIRECTE") {
        return Err(soap_fault("Sender", "Authentification_Mode inconnu"));
    }
    let purpose = attribute("urn:oasis:names:tc:xspa:1.0:subject:purposeofuse").and_then(|(_, code)| code).unwrap_or_default();
    if !matches!(purpose.as_str(), "normal" | "bris_de_glace" | "centre_15") {
        return Err(soap_fault("Sender", "PurposeOfUse inconnu"));
    }
    let resource = attribute("urn:oasis:names:tc:xacml:2.0:resource:resource-id").map(|(t, _)| t).unwrap_or_default();
    Ok(resource.split('^').next().unwrap_or_default().to_string())
}

impl Simulator {
    /// Common to both endpoints: faults, latency, the envelope and its VIHF.
    #[allow(clippy::result_large_err)] // the refusal is the SOAP fault answer itself
    async fn admit(&self, body: &Bytes) -> Result<(Node, String), Response> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.faults.latency.is_zero() {
            tokio::time::sleep(self.faults.latency).await;
        }
        if self.faults.always_fault || (self.faults.fail_every > 0 && n.is_multiple_of(self.faults.fail_every)) {
            return Err(soap_fault("Receiver", "Service momentanément indisponible"));
        }
        let text = std::str::from_utf8(body).map_err(|_| soap_fault("Sender", "requête non UTF-8"))?;
        let envelope = parse_tree(text).map_err(|_| soap_fault("Sender", "requête mal formée"))?;
        let patient = vihf_patient(&envelope)?;
        Ok((envelope, patient))
    }

    fn respond(&self, content_type: String, body: Vec<u8>) -> Response {
        let body = if self.faults.truncate_mtom && content_type.starts_with("multipart/") { body[..body.len() / 2].to_vec() } else { body };
        match self.faults.drip {
            None => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
            Some(pause) => {
                let chunks: Vec<Vec<u8>> = body.chunks(256).map(<[u8]>::to_vec).collect();
                let stream = futures_util::stream::unfold(chunks.into_iter(), move |mut rest| async move {
                    let chunk = rest.next()?;
                    tokio::time::sleep(pause).await;
                    Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), rest))
                });
                ([(header::CONTENT_TYPE, content_type)], Body::from_stream(stream)).into_response()
            }
        }
    }
}

/// TD0.2: does this patient have a DMP (the VIHF must name the patient asked about).
async fn patients(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let (envelope, vihf_patient) = match sim.admit(&body).await {
        Ok(x) => x,
        Err(fault) => return fault,
    };
    if !super::patients::has_bare_message_id(&envelope) {
        return sim.respond("application/soap+xml; charset=UTF-8".into(), soap(&super::patients::existence_refusal()).into_bytes());
    }
    let Some(ins) = super::patients::queried_ins(&envelope) else { return soap_fault("Sender", "patient absent de la requête") };
    if ins != vihf_patient {
        return soap_fault("Sender", "le VIHF ne désigne pas ce patient");
    }
    let found = sim.documents.iter().any(|d| d.patient_ins == ins);
    sim.respond("application/soap+xml; charset=UTF-8".into(), soap(&super::patients::existence_answer(found)).into_bytes())
}

/// ITI-18 FindDocuments.
async fn registry(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let (envelope, vihf_patient) = match sim.admit(&body).await {
        Ok(x) => x,
        Err(fault) => return fault,
    };
    let slot = |name: &str| -> Vec<String> {
        envelope
            .descendants("Slot")
            .find(|s| s.attr("name") == Some(name))
            .map(|s| s.descendants("Value").map(|v| v.text.trim().to_string()).collect())
            .unwrap_or_default()
    };
    let query_id = envelope.descendants("AdhocQuery").next().and_then(|q| q.attr("id")).unwrap_or_default().to_string();
    // GetDocuments names documents, not a patient: only those of the patient the VIHF names.
    let wanted_ids: Option<Vec<String>> = (query_id == super::xds::GET_DOCUMENTS).then(|| {
        slot("$XDSDocumentEntryUniqueId")
            .concat()
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(|v| v.trim().trim_matches('\'').replace("''", "'"))
            .filter(|v| !v.is_empty())
            .collect()
    });
    let patient = match &wanted_ids {
        Some(_) => Some(vihf_patient.clone()),
        None => slot("$XDSDocumentEntryPatientId").first().map(|v| v.trim_matches('\'').split('^').next().unwrap_or_default().to_string()),
    };
    let Some(patient) = patient else { return soap_fault("Sender", "patient absent de la requête") };
    let failure = |code: &str, context: &str| {
        let body = soap(&format!(
            "<query:AdhocQueryResponse xmlns:query=\"urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0\" xmlns:rs=\"urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0\" \
             status=\"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure\">{}</query:AdhocQueryResponse>",
            registry_failure(code, context)
        ));
        ([(header::CONTENT_TYPE, "application/soap+xml; charset=UTF-8")], body).into_response()
    };
    if patient != vihf_patient {
        return failure("XDSRegistryError", "le VIHF ne désigne pas ce patient");
    }
    let statuses = if wanted_ids.is_some() { "Approved Deprecated".to_string() } else { slot("$XDSDocumentEntryStatus").concat() };
    let from = slot("$XDSDocumentEntryCreationTimeFrom").first().cloned();
    let to = slot("$XDSDocumentEntryCreationTimeTo").first().cloned();
    let of_patient: Vec<&SimDocument> = sim.documents.iter().filter(|d| d.patient_ins == patient).collect();
    if of_patient.is_empty() {
        return failure("XDSUnknownPatientId", "patient inconnu du DMP");
    }
    let objects: String = of_patient
        .into_iter()
        .filter(|d| wanted_ids.as_ref().is_none_or(|ids| ids.contains(&d.unique_id)))
        .filter(|d| if d.deprecated { statuses.contains("Deprecated") } else { statuses.contains("Approved") })
        .filter(|d| from.as_deref().is_none_or(|f| d.creation_time.as_str() >= f) && to.as_deref().is_none_or(|t| d.creation_time.as_str() < t))
        .flat_map(|d| (0..if sim.faults.duplicate_entries { 2 } else { 1 }).map(move |copy| (d, copy)))
        .map(|(d, copy)| {
            let uuid = if copy == 0 { entry_uuid(&d.unique_id) } else { entry_uuid(&format!("{}#{copy}", d.unique_id)) };
            let status = if d.deprecated { "Deprecated" } else { "Approved" };
            format!(
                "<rim:ExtrinsicObject id=\"{uuid}\" mimeType=\"text/xml\" status=\"urn:oasis:names:tc:ebxml-regrep:StatusType:{status}\" objectType=\"urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1\">\
                 <rim:Slot name=\"creationTime\"><rim:ValueList><rim:Value>{}</rim:Value></rim:ValueList></rim:Slot>\
                 <rim:Slot name=\"repositoryUniqueId\"><rim:ValueList><rim:Value>{REPOSITORY}</rim:Value></rim:ValueList></rim:Slot>\
                 <rim:Slot name=\"size\"><rim:ValueList><rim:Value>{}</rim:Value></rim:ValueList></rim:Slot>\
                 <rim:Slot name=\"hash\"><rim:ValueList><rim:Value>{}</rim:Value></rim:ValueList></rim:Slot>\
                 <rim:Classification classificationScheme=\"urn:uuid:f0306f51-975f-434e-a61c-c59651d33983\" classifiedObject=\"{uuid}\" nodeRepresentation=\"11502-2\" id=\"{uuid}-type\"/>\
                 <rim:ExternalIdentifier identificationScheme=\"urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427\" registryObject=\"{uuid}\" id=\"{uuid}-pid\" value=\"{}^^^&amp;{}&amp;ISO\"/>\
                 <rim:ExternalIdentifier identificationScheme=\"urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab\" registryObject=\"{uuid}\" id=\"{uuid}-uid\" value=\"{}\"/>\
                 </rim:ExtrinsicObject>",
                d.creation_time,
                d.bytes.len(),
                sha1_hex(&d.bytes),
                xml_escape(&d.patient_ins),
                xml_escape(&d.patient_oid),
                xml_escape(&d.unique_id)
            )
        })
        .collect();
    let body = soap(&format!(
        "<query:AdhocQueryResponse xmlns:query=\"urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0\" xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\" \
         status=\"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success\"><rim:RegistryObjectList>{objects}</rim:RegistryObjectList></query:AdhocQueryResponse>"
    ));
    sim.respond("application/soap+xml; charset=UTF-8".into(), body.into_bytes())
}

/// ITI-43 Retrieve Document Set, answered in MTOM. Only documents of the patient the VIHF names.
async fn repository(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let (envelope, vihf_patient) = match sim.admit(&body).await {
        Ok(x) => x,
        Err(fault) => return fault,
    };
    let mut responses = String::new();
    let mut errors = String::new();
    let mut attachments = Vec::new();
    for request in envelope.descendants("DocumentRequest") {
        let unique_id = request.child("DocumentUniqueId").map(|n| n.text.trim().to_string()).unwrap_or_default();
        match sim.documents.iter().find(|d| d.unique_id == unique_id && d.patient_ins == vihf_patient) {
            Some(d) => {
                let cid = format!("doc{}@dmp-sim", attachments.len() + 1);
                responses.push_str(&format!(
                    "<xdsb:DocumentResponse><xdsb:RepositoryUniqueId>{REPOSITORY}</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>{}</xdsb:DocumentUniqueId>\
                     <xdsb:mimeType>text/xml</xdsb:mimeType><xdsb:Document><xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:{cid}\"/></xdsb:Document></xdsb:DocumentResponse>",
                    xml_escape(&unique_id)
                ));
                let mut bytes = d.bytes.to_vec();
                if sim.faults.corrupt_one && sim.documents.iter().map(|d| &d.unique_id).min() == Some(&d.unique_id) {
                    // Same size, one byte changed: only the hash can tell.
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0x20;
                }
                attachments.push((cid, "text/xml".to_string(), bytes));
            }
            // Unknown, or another patient's: the same answer.
            None => errors.push_str(&format!(
                "<rs:RegistryError errorCode=\"XDSDocumentUniqueIdError\" severity=\"urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error\" codeContext=\"{}\"/>",
                xml_escape(&unique_id)
            )),
        }
    }
    let status = match (attachments.is_empty(), errors.is_empty()) {
        (false, true) => "Success",
        (false, false) => "PartialSuccess",
        (true, _) => "Failure",
    };
    let error_list = if errors.is_empty() { String::new() } else { format!("<rs:RegistryErrorList>{errors}</rs:RegistryErrorList>") };
    let soap_body = soap(&format!(
        "<xdsb:RetrieveDocumentSetResponse xmlns:xdsb=\"urn:ihe:iti:xds-b:2007\"><rs:RegistryResponse xmlns:rs=\"urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0\" \
         status=\"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:{status}\">{error_list}</rs:RegistryResponse>{responses}</xdsb:RetrieveDocumentSetResponse>"
    ));
    let (content_type, body) = mtom::build("MIMEBoundary_dmp_sim", &soap_body, &attachments);
    sim.respond(content_type, body)
}
