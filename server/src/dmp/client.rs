//! The DMP client: ITI-18 and ITI-43 over SOAP 1.2, each request carrying a VIHF signed with
//! the structure's key, over TLS with the structure's client certificate (plain HTTP only to
//! loopback: the simulator). Transient failures (timeouts, connection errors, 5xx, SOAP
//! Receiver faults, busy registry, truncated answers) are retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use super::vihf::{PurposeOfUse, StructureKey, VihfRequest, signed_vihf};
use super::xds::{
    FindDocuments, FindDocumentsResult, RetrieveResult, XdsError, parse_find_documents_response, parse_retrieve_response, retrieve_request,
};

/// Where the DMP is and who the structure is.
#[derive(Debug, Clone)]
pub struct DmpSettings {
    /// Base URL; the registry is `{endpoint}/registry`, the repository `{endpoint}/repository`.
    pub endpoint: String,
    pub structure_id: String,
    pub activity_sector: String,
    pub homologation_id: String,
    pub timeout: Duration,
    /// Attempts for a transient failure (1: no retry).
    pub attempts: u32,
    /// First backoff; doubled at each retry.
    pub backoff: Duration,
}

/// The professional on whose behalf a request is made (from their account / OIDC claims).
#[derive(Debug, Clone)]
pub struct Requester {
    pub national_id: String,
    pub name: String,
    pub profession_code: String,
    pub profession_name: String,
    /// `AIR` after Pro Santé Connect, `DIRECTE` with a CPS card.
    pub authentication_mode: String,
}

impl Requester {
    /// The professional of an account, for the VIHF; `None` without a national id or a
    /// profession the VIHF can code (never a guessed identity).
    pub fn of_account(account: &crate::access::Account) -> Option<Requester> {
        let national_id = account.rpps.as_deref()?.rsplit('^').next()?.to_string();
        let profession = account.profession.as_deref()?;
        let code = [("Médecin", "10"), ("Pharmacien", "21"), ("Chirurgien-dentiste", "40"), ("Sage-femme", "50"), ("Infirmier", "60")]
            .iter()
            .find(|(name, _)| profession.starts_with(name))
            .map(|(_, code)| code.to_string())?;
        Some(Requester {
            national_id,
            name: account.display_name.clone(),
            profession_code: code,
            profession_name: profession.to_string(),
            // Local accounts are password sign-ins: only an OpenID (Pro Santé Connect) sign-in
            // is the strong indirect authentication the DMP requires for reading.
            authentication_mode: if account.oidc_linked { "AIR" } else { "INDIRECTE" }.to_string(),
        })
    }
}

/// The patient and why they are asked about.
#[derive(Debug, Clone)]
pub struct PatientQuery {
    pub ins: String,
    pub ins_oid: String,
    pub purpose: PurposeOfUse,
}

#[derive(Debug, thiserror::Error)]
pub enum DmpError {
    #[error("the DMP must be reached over HTTPS (plain HTTP only on loopback): {0}")]
    Insecure(String),
    #[error("the DMP could not be reached: {0}")]
    Unreachable(String),
    #[error("the DMP answered HTTP {0}")]
    Status(u16),
    #[error(transparent)]
    Xds(#[from] XdsError),
    #[error("the VIHF could not be signed: {0}")]
    Vihf(#[from] super::vihf::VihfError),
    #[error("the client certificate or key is not readable: {0}")]
    Certificate(String),
    #[error("this patient has no DMP (or it may not be read)")]
    NoDmp,
}

impl DmpError {
    pub fn is_transient(&self) -> bool {
        match self {
            DmpError::Unreachable(_) => true,
            DmpError::Status(code) => *code >= 500 || *code == 429,
            DmpError::Xds(e) => e.is_transient(),
            DmpError::Insecure(_) | DmpError::Vihf(_) | DmpError::Certificate(_) | DmpError::NoDmp => false,
        }
    }
}

pub struct DmpClient {
    settings: DmpSettings,
    key: Arc<StructureKey>,
    agent: ureq::Agent,
}

/// The certificates of a PEM text (at least one).
fn certificates(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, DmpError> {
    let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| DmpError::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(DmpError::Certificate("no certificate in the PEM text".into()));
    }
    Ok(certs)
}

fn is_loopback(url: &str) -> bool {
    let host = url.strip_prefix("http://").unwrap_or("").split(['/', ':']).next().unwrap_or("");
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

impl DmpClient {
    /// `client_cert`: the structure's certificate chain and key (PEM) for mutual TLS.
    /// `trusted_roots`: the authorities the DMP's server certificate must chain to (PEM; the
    /// DMP's come from the IGC-Santé, not from the web's usual roots); `None`: the web's roots.
    pub fn new(
        settings: DmpSettings,
        key: Arc<StructureKey>,
        client_cert: Option<(&[u8], &[u8])>,
        trusted_roots: Option<&[u8]>,
    ) -> Result<DmpClient, DmpError> {
        if !settings.endpoint.starts_with("https://") && !is_loopback(&settings.endpoint) {
            return Err(DmpError::Insecure(settings.endpoint));
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(roots_pem) = trusted_roots {
            let roots = certificates(roots_pem)?;
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
        }
        if let Some((chain_pem, key_pem)) = client_cert {
            let chain = certificates(chain_pem)?;
            let key = ureq::tls::PrivateKey::from_pem(key_pem).map_err(|e| DmpError::Certificate(e.to_string()))?;
            tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&chain, key)));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(settings.timeout))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .build()
            .into();
        Ok(DmpClient { settings, key, agent })
    }

    fn vihf(&self, requester: &Requester, patient: &PatientQuery) -> Result<String, DmpError> {
        let now = chrono::Utc::now();
        let request = VihfRequest {
            professional_id: requester.national_id.clone(),
            professional_name: requester.name.clone(),
            profession_code: requester.profession_code.clone(),
            profession_name: requester.profession_name.clone(),
            structure_id: self.settings.structure_id.clone(),
            activity_sector: self.settings.activity_sector.clone(),
            authentication_mode: requester.authentication_mode.clone(),
            patient_ins: patient.ins.clone(),
            patient_ins_oid: patient.ins_oid.clone(),
            purpose: patient.purpose,
            software_name: "Bioviewer".into(),
            software_version: env!("CARGO_PKG_VERSION").into(),
            homologation_id: self.settings.homologation_id.clone(),
            assertion_id: format!("_{}", uuid::Uuid::new_v4()),
            issue_instant: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            not_on_or_after: (now + chrono::Duration::minutes(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        Ok(signed_vihf(&request, &self.key)?)
    }

    /// One POST, on the blocking pool: the answer's content type and bytes.
    async fn post(&self, path: &str, soap: String) -> Result<(String, Vec<u8>), DmpError> {
        let agent = self.agent.clone();
        let url = format!("{}/{path}", self.settings.endpoint.trim_end_matches('/'));
        tokio::task::spawn_blocking(move || {
            let mut response = agent
                .post(&url)
                .header("Content-Type", "application/soap+xml; charset=UTF-8")
                .send(soap.as_bytes())
                .map_err(|e| DmpError::Unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let body = response
                .body_mut()
                .with_config()
                .limit(512 * 1024 * 1024)
                .read_to_vec()
                .map_err(|e| DmpError::Unreachable(e.to_string()))?;
            // SOAP faults come with 4xx/5xx: read them as such when they are SOAP.
            if status >= 400 && !content_type.contains("soap+xml") {
                return Err(DmpError::Status(status));
            }
            Ok((content_type, body))
        })
        .await
        .map_err(|e| DmpError::Unreachable(e.to_string()))?
    }

    /// Runs `attempt` until it succeeds, fails for good, or runs out of attempts.
    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, DmpError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, DmpError>>,
    {
        let mut pause = self.settings.backoff;
        let mut left = self.settings.attempts.max(1);
        loop {
            left -= 1;
            match attempt().await {
                Err(e) if e.is_transient() && left > 0 => {
                    tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "DMP request failed, retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                other => return other,
            }
        }
    }

    /// TD0.2: whether the patient has a DMP that may be read.
    pub async fn patient_has_dmp(&self, requester: &Requester, patient: &PatientQuery) -> Result<bool, DmpError> {
        let to = format!("{}/patients", self.settings.endpoint);
        self.with_retries(|| async {
            let message_id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
            let now = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
            let body = super::patients::existence_query(&patient.ins, &patient.ins_oid, &self.settings.structure_id, &message_id, &now);
            let soap =
                super::xds::soap_envelope("urn:hl7-org:v3:PRPA_IN201307UV02", &message_id, &to, &self.vihf(requester, patient)?, &body);
            let (_, answer) = self.post("patients", soap).await?;
            let text = String::from_utf8(answer).map_err(|_| XdsError::PatientsMalformed("the answer is not UTF-8".into()))?;
            Ok(super::patients::parse_existence_answer(&text)?)
        })
        .await
    }

    /// ITI-18: the patient's CR-BIO entries, Approved and Deprecated.
    pub async fn find_documents(&self, requester: &Requester, patient: &PatientQuery) -> Result<FindDocumentsResult, DmpError> {
        let query = FindDocuments {
            ins: patient.ins.clone(),
            ins_oid: patient.ins_oid.clone(),
            approved_only: false,
            created_from: None,
            created_to: None,
        };
        self.registry_query(requester, patient, |vihf, message_id, to| query.soap_request(vihf, message_id, to)).await
    }

    /// ITI-18 GetDocuments: the registry's entries for these uniqueIds (current status).
    pub async fn get_documents(
        &self,
        requester: &Requester,
        patient: &PatientQuery,
        unique_ids: &[String],
    ) -> Result<FindDocumentsResult, DmpError> {
        self.registry_query(requester, patient, |vihf, message_id, to| super::xds::get_documents_request(unique_ids, vihf, message_id, to))
            .await
    }

    /// An ITI-18 stored query (`request` builds the SOAP message from the VIHF, message id and
    /// address), with retries; the registry's answer read into entries.
    async fn registry_query(
        &self,
        requester: &Requester,
        patient: &PatientQuery,
        request: impl Fn(&str, &str, &str) -> String,
    ) -> Result<FindDocumentsResult, DmpError> {
        let to = format!("{}/registry", self.settings.endpoint);
        self.with_retries(|| async {
            let soap = request(&self.vihf(requester, patient)?, &format!("urn:uuid:{}", uuid::Uuid::new_v4()), &to);
            let (_, body) = self.post("registry", soap).await?;
            let text = String::from_utf8(body).map_err(|_| XdsError::Malformed("the answer is not UTF-8".into()))?;
            Ok(parse_find_documents_response(&text)?)
        })
        .await
    }

    /// ITI-43: these documents' bytes, `(repository, uniqueId)` each.
    pub async fn retrieve(
        &self,
        requester: &Requester,
        patient: &PatientQuery,
        documents: &[(String, String)],
    ) -> Result<RetrieveResult, DmpError> {
        let to = format!("{}/repository", self.settings.endpoint);
        self.with_retries(|| async {
            let soap = retrieve_request(documents, &self.vihf(requester, patient)?, &format!("urn:uuid:{}", uuid::Uuid::new_v4()), &to);
            let (content_type, body) = self.post("repository", soap).await?;
            Ok(parse_retrieve_response(&content_type, &body)?)
        })
        .await
    }
}
