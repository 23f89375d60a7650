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
    /// The VIHF's `Authentification_Mode`: [`STRONG_INDIRECT`] after Pro Santé Connect,
    /// [`DIRECT`] with a CPS card, [`INDIRECT`] (password) towards the simulator only.
    pub authentication_mode: String,
}

/// `Authentification_Mode` values of the VIHF.
pub const DIRECT: &str = "DIRECTE";
/// Strong indirect authentication ("AIR"): what the DMP requires of a web viewer for reading.
pub const STRONG_INDIRECT: &str = "INDIRECTE_RENFORCEE";
/// Plain indirect authentication (a password): refused by the DMP for reading.
pub const INDIRECT: &str = "INDIRECTE";

/// Why Bioviewer does not ask the DMP on behalf of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadRefusal {
    #[error("this account has no national id or profession the VIHF can state")]
    NoProfessionalIdentity,
    #[error("the DMP refuses reading to a password sign-in: sign in with Pro Santé Connect to sync from the DMP")]
    PasswordSignIn,
}

impl Requester {
    /// May Bioviewer read the DMP on behalf of this account, against this endpoint? A plain
    /// function of the account and the endpoint (no I/O), the one decision the web sync and
    /// `bioviewer sync` share.
    ///
    /// A professional signed in through Pro Santé Connect (`oidc_linked`) reads in strong
    /// indirect mode (`INDIRECTE_RENFORCEE`). A password account can only state `INDIRECTE`,
    /// which the DMP refuses for reading: it is not offered a read against a real DMP, only
    /// against the simulator (the demo's password accounts), whose VIHF says `INDIRECTE` as it
    /// happened. Never a guessed identity: no national id or codable profession, no read.
    pub fn for_reading(account: &crate::access::Account, endpoint_is_simulator: bool) -> Result<Requester, ReadRefusal> {
        let identity = || -> Option<(String, String, String)> {
            let national_id = account.rpps.as_deref()?.rsplit('^').next()?.to_string();
            let profession = account.profession.as_deref()?;
            let code = [("Médecin", "10"), ("Pharmacien", "21"), ("Chirurgien-dentiste", "40"), ("Sage-femme", "50"), ("Infirmier", "60")]
                .iter()
                .find(|(name, _)| profession.starts_with(name))
                .map(|(_, code)| code.to_string())?;
            Some((national_id, code, profession.to_string()))
        };
        let (national_id, profession_code, profession_name) = identity().ok_or(ReadRefusal::NoProfessionalIdentity)?;
        let authentication_mode = match (account.oidc_linked, endpoint_is_simulator) {
            (true, _) => STRONG_INDIRECT,
            (false, true) => INDIRECT,
            (false, false) => return Err(ReadRefusal::PasswordSignIn),
        };
        Ok(Requester {
            national_id,
            name: account.display_name.clone(),
            profession_code,
            profession_name,
            authentication_mode: authentication_mode.to_string(),
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
    /// Whether the endpoint is the simulator: plain HTTP to loopback, the only plain-HTTP
    /// endpoint `new` accepts (a real DMP is reached over HTTPS with mutual TLS). Were it a
    /// local proxy to a real DMP, a password account's `INDIRECTE` would be refused by the DMP
    /// itself: the DMP enforces the rule, this only spares the user a request bound to fail.
    pub fn is_simulator(&self) -> bool {
        is_loopback(&self.settings.endpoint)
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Account, Role};

    fn professional(oidc_linked: bool) -> Account {
        Account {
            id: uuid::Uuid::nil(),
            login: "gp".into(),
            role: Role::Professional,
            display_name: "Dr Sophie DURAND".into(),
            rpps: Some("1.2.250.1.71.4.2.1^810000000011".into()),
            profession: Some("Médecin généraliste".into()),
            structure_id: None,
            structure_name: None,
            patient_id: None,
            disabled: false,
            oidc_linked,
        }
    }

    #[test]
    fn a_pro_sante_connect_professional_reads_the_dmp_in_strong_indirect_mode() {
        for simulator in [false, true] {
            let requester = Requester::for_reading(&professional(true), simulator).unwrap();
            assert_eq!(requester.authentication_mode, "INDIRECTE_RENFORCEE", "AIR, spelled as the VIHF states it");
            assert_eq!(requester.national_id, "810000000011");
        }
    }

    #[test]
    fn a_password_account_is_not_offered_a_dmp_read_except_against_the_simulator() {
        assert_eq!(Requester::for_reading(&professional(false), false).unwrap_err(), ReadRefusal::PasswordSignIn);
        let simulated = Requester::for_reading(&professional(false), true).unwrap();
        assert_eq!(simulated.authentication_mode, "INDIRECTE", "the VIHF says what happened; only the simulator accepts it");
        let no_id = Account { rpps: None, ..professional(true) };
        assert_eq!(Requester::for_reading(&no_id, true).unwrap_err(), ReadRefusal::NoProfessionalIdentity);
    }

    #[test]
    fn only_plain_http_to_loopback_is_the_simulator() {
        assert!(is_loopback("http://127.0.0.1:3100/dmp") && is_loopback("http://localhost/dmp"));
        assert!(!is_loopback("https://127.0.0.1/dmp") && !is_loopback("http://dmp.example/dmp"));
    }
}
