//! OpenID Connect sign-in for professionals (Pro Santé Connect in production): authorization
//! code flow with PKCE (S256), `state` and `nonce`, optional `acr_values`; the ID token's
//! signature (RS256, the provider's JWKS), issuer, audience, expiry and nonce are checked, then
//! the userinfo claims give the professional's identity, national id, profession and structure
//! (what the VIHF sent to the DMP states).
//!
//! The provider is reached over HTTPS; plain HTTP only on loopback (a local test provider).
//! HTTP calls are blocking (`ureq`) and run on tokio's blocking pool.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::access::secrets;
use crate::urlencode::{form_encode, percent_encode};

/// Where the provider is and who we are to it.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Our callback, exactly as registered with the provider (`…/auth/oidc/callback`).
    pub redirect_url: String,
    pub scopes: String,
    /// e.g. `eidas1` for Pro Santé Connect; checked against the ID token's `acr` when set.
    pub acr_values: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider must be reached over HTTPS (plain HTTP only on loopback): {0}")]
    InsecureIssuer(String),
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider answered {status} at {what}")]
    Status { what: &'static str, status: u16 },
    #[error("the identity provider's answer is not valid: {0}")]
    Invalid(String),
    #[error("the sign-in was not started here, or took too long")]
    UnknownState,
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the ID token is not valid: {0}")]
    BadToken(String),
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
}

/// A sign-in started and not yet finished.
struct Pending {
    nonce: String,
    verifier: String,
    next: String,
    started: Instant,
}

/// The professional the provider vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfessionalIdentity {
    /// The provider's stable subject identifier.
    pub subject: String,
    pub display_name: String,
    /// National id as `root^extension` (RPPS/ADELI through the `SubjectNameID` claim).
    pub national_id: Option<String>,
    pub profession: Option<String>,
    pub structure_id: Option<String>,
    pub structure_name: Option<String>,
}

/// How long a started sign-in may take.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// The OID of the national professional id (`SubjectNameID`: "8" + RPPS, or ADELI).
const NATIONAL_ID_ROOT: &str = "1.2.250.1.71.4.2.1";

pub struct Oidc {
    settings: OidcSettings,
    discovery: OnceCell<Discovery>,
    pending: Mutex<HashMap<String, Pending>>,
    agent: ureq::Agent,
}

fn is_loopback(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or("");
    let host = rest.split(['/', ':']).next().unwrap_or("");
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> Result<Oidc, OidcError> {
        if !settings.issuer.starts_with("https://") && !is_loopback(&settings.issuer) {
            return Err(OidcError::InsecureIssuer(settings.issuer));
        }
        let agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(15))).http_status_as_error(false).build().into();
        Ok(Oidc { settings, discovery: OnceCell::new(), pending: Mutex::new(HashMap::new()), agent })
    }

    /// GET a JSON document from the provider.
    async fn get_json<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        what: &'static str,
        url: String,
        bearer: Option<String>,
    ) -> Result<T, OidcError> {
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || {
            let mut request = agent.get(&url).header("Accept", "application/json");
            if let Some(token) = &bearer {
                request = request.header("Authorization", &format!("Bearer {token}"));
            }
            let mut response = request.call().map_err(|e| OidcError::Unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_string().map_err(|e| OidcError::Unreachable(e.to_string()))?;
            if status != 200 {
                return Err(OidcError::Status { what, status });
            }
            serde_json::from_str(&body).map_err(|e| OidcError::Invalid(format!("{what}: {e}")))
        })
        .await
        .map_err(|e| OidcError::Unreachable(e.to_string()))?
    }

    async fn discovery(&self) -> Result<&Discovery, OidcError> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
                let discovery: Discovery = self.get_json("discovery", url, None).await?;
                if discovery.issuer.trim_end_matches('/') != self.settings.issuer.trim_end_matches('/') {
                    return Err(OidcError::Invalid("the discovery document names another issuer".into()));
                }
                for endpoint in
                    [&discovery.authorization_endpoint, &discovery.token_endpoint, &discovery.userinfo_endpoint, &discovery.jwks_uri]
                {
                    if !endpoint.starts_with("https://") && !is_loopback(endpoint) {
                        return Err(OidcError::InsecureIssuer(endpoint.clone()));
                    }
                }
                Ok(discovery)
            })
            .await
    }

    /// Starts a sign-in: the provider's authorization URL to send the browser to, and the
    /// `state` the browser must bring back (kept in a cookie as well).
    pub async fn start(&self, next: &str) -> Result<(String, String), OidcError> {
        let discovery = self.discovery().await?;
        let state = secrets::new_token()?;
        let nonce = secrets::new_token()?;
        let verifier = secrets::new_token()?;
        let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", self.settings.client_id.as_str()),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("scope", self.settings.scopes.as_str()),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(acr) = &self.settings.acr_values {
            params.push(("acr_values", acr.as_str()));
        }
        let url = format!("{}?{}", discovery.authorization_endpoint, form_encode(&params));
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, p| p.started.elapsed() < PENDING_TTL);
        if pending.len() > 10_000 {
            return Err(OidcError::Refused("too many sign-ins in progress".into()));
        }
        pending.insert(state.clone(), Pending { nonce, verifier, next: next.to_string(), started: Instant::now() });
        Ok((url, state))
    }

    /// Finishes a sign-in: checks `state` against the one this browser started, exchanges the
    /// code, validates the ID token, reads userinfo. Returns the professional and where to go.
    pub async fn finish(&self, state: &str, browser_state: Option<&str>, code: &str) -> Result<(ProfessionalIdentity, String), OidcError> {
        if browser_state.is_none_or(|b| !secrets::constant_time_eq(b, state)) {
            return Err(OidcError::UnknownState);
        }
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state)
            .filter(|p| p.started.elapsed() < PENDING_TTL)
            .ok_or(OidcError::UnknownState)?;
        let discovery = self.discovery().await?.clone();
        let tokens = self.exchange(&discovery, code, &pending.verifier).await?;
        let jwks: jsonwebtoken::jwk::JwkSet = self.get_json("jwks", discovery.jwks_uri.clone(), None).await?;
        let claims = validate_id_token(&tokens.id_token, &jwks, &discovery.issuer, &self.settings.client_id, &pending.nonce)?;
        if let Some(wanted) = &self.settings.acr_values
            && !wanted.split_whitespace().any(|acr| claims.acr.as_deref() == Some(acr))
        {
            return Err(OidcError::BadToken(format!("authentication level {:?} is not one of {wanted}", claims.acr)));
        }
        let userinfo: serde_json::Value = self.get_json("userinfo", discovery.userinfo_endpoint.clone(), Some(tokens.access_token)).await?;
        if userinfo.get("sub").and_then(|s| s.as_str()) != Some(claims.sub.as_str()) {
            return Err(OidcError::Invalid("userinfo is about another subject".into()));
        }
        Ok((identity_from_claims(&claims.sub, &userinfo), pending.next))
    }

    async fn exchange(&self, discovery: &Discovery, code: &str, verifier: &str) -> Result<TokenResponse, OidcError> {
        let agent = self.agent.clone();
        let url = discovery.token_endpoint.clone();
        let basic =
            b64url_standard(&format!("{}:{}", form_component(&self.settings.client_id), form_component(&self.settings.client_secret)));
        let body = form_encode(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.settings.redirect_url),
            ("code_verifier", verifier),
        ]);
        tokio::task::spawn_blocking(move || {
            let mut response = agent
                .post(&url)
                .header("Authorization", &format!("Basic {basic}"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Accept", "application/json")
                .send(body.as_bytes())
                .map_err(|e| OidcError::Unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().map_err(|e| OidcError::Unreachable(e.to_string()))?;
            if status != 200 {
                let reason = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                    .unwrap_or_else(|| format!("status {status}"));
                return Err(OidcError::Refused(reason));
            }
            serde_json::from_str(&text).map_err(|e| OidcError::Invalid(format!("token response: {e}")))
        })
        .await
        .map_err(|e| OidcError::Unreachable(e.to_string()))?
    }
}

/// `client_secret_basic` form-encodes id and secret before base64 (RFC 6749 §2.3.1).
fn form_component(s: &str) -> String {
    percent_encode(s, false)
}

fn b64url_standard(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: String,
    access_token: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IdClaims {
    pub sub: String,
    pub nonce: Option<String>,
    pub acr: Option<String>,
}

/// Checks an ID token: RS256 signature by a key of the provider's set, issuer, audience,
/// expiry (with a minute of clock leeway), and the nonce of this sign-in.
pub(crate) fn validate_id_token(
    token: &str,
    jwks: &jsonwebtoken::jwk::JwkSet,
    issuer: &str,
    client_id: &str,
    nonce: &str,
) -> Result<IdClaims, OidcError> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    let header = decode_header(token).map_err(|e| OidcError::BadToken(e.to_string()))?;
    // Only asymmetric RS256: never `none`, never a MAC keyed with something public.
    if header.alg != Algorithm::RS256 {
        return Err(OidcError::BadToken(format!("algorithm {:?} refused", header.alg)));
    }
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(|| OidcError::BadToken("signed with a key the provider does not publish".into()))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| OidcError::BadToken(e.to_string()))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 60;
    let data = decode::<IdClaims>(token, &key, &validation).map_err(|e| OidcError::BadToken(e.to_string()))?;
    if data.claims.nonce.as_deref().is_none_or(|n| !secrets::constant_time_eq(n, nonce)) {
        return Err(OidcError::BadToken("the nonce is not this sign-in's".into()));
    }
    Ok(data.claims)
}

/// The professional, from Pro Santé Connect's userinfo claims (`given_name`, `family_name`,
/// `SubjectNameID`, `SubjectRefPro.exercices[0]`).
pub(crate) fn identity_from_claims(subject: &str, userinfo: &serde_json::Value) -> ProfessionalIdentity {
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let given = text(userinfo.get("given_name"));
    let family = text(userinfo.get("family_name"));
    let exercise = userinfo.get("SubjectRefPro").and_then(|r| r.get("exercices")).and_then(|e| e.get(0));
    let civility = text(exercise.and_then(|_| userinfo.get("SubjectRefPro")).and_then(|r| r.get("codeCivilite")));
    let profession = text(exercise.and_then(|e| e.get("codeProfession"))).map(|code| profession_name(&code));
    let activity = exercise.and_then(|e| e.get("activities")).and_then(|a| a.get(0));
    let name = [civility.map(|c| if c == "DR" { "Dr".to_string() } else { c }), family, given].into_iter().flatten().collect::<Vec<_>>();
    ProfessionalIdentity {
        subject: subject.to_string(),
        display_name: if name.is_empty() { subject.to_string() } else { name.join(" ") },
        national_id: text(userinfo.get("SubjectNameID")).map(|id| format!("{NATIONAL_ID_ROOT}^{id}")),
        profession,
        structure_id: text(activity.and_then(|a| a.get("identifiantStructure"))),
        structure_name: text(activity.and_then(|a| a.get("raisonSocialeSite"))),
    }
}

/// The profession codes of the national directory (TRE_G15) that read results.
fn profession_name(code: &str) -> String {
    match code {
        "10" => "Médecin".into(),
        "21" => "Pharmacien".into(),
        "40" => "Chirurgien-dentiste".into(),
        "50" => "Sage-femme".into(),
        "60" => "Infirmier".into(),
        other => format!("Professionnel de santé ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    // A 2048-bit RSA key made for these tests only (openssl genrsa 2048).
    const TEST_KEY: &str = include_str!("../tests/data/oidc-test-key.pem");
    const TEST_JWK_N: &str = include_str!("../tests/data/oidc-test-key.n");

    fn jwks(kid: &str) -> jsonwebtoken::jwk::JwkSet {
        serde_json::from_value(
            serde_json::json!({"keys": [{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": TEST_JWK_N.trim(), "e": "AQAB"}]}),
        )
        .unwrap()
    }

    fn token(claims: serde_json::Value, alg: Algorithm, kid: &str) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        let key = match alg {
            Algorithm::HS256 => EncodingKey::from_secret(TEST_JWK_N.trim().as_bytes()),
            _ => EncodingKey::from_rsa_pem(TEST_KEY.as_bytes()).unwrap(),
        };
        encode(&header, &claims, &key).unwrap()
    }

    fn claims(over: serde_json::Value) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        let mut base = serde_json::json!({"iss": "https://idp.test", "aud": "bioviewer", "sub": "s1", "nonce": "n1", "exp": now + 300, "iat": now, "acr": "eidas1"});
        for (k, v) in over.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    #[test]
    fn a_valid_id_token_is_accepted() {
        let t = token(claims(serde_json::json!({})), Algorithm::RS256, "k1");
        let c = validate_id_token(&t, &jwks("k1"), "https://idp.test", "bioviewer", "n1").unwrap();
        assert_eq!((c.sub.as_str(), c.acr.as_deref()), ("s1", Some("eidas1")));
    }

    #[test]
    fn forged_or_misdirected_id_tokens_are_refused() {
        let keys = jwks("k1");
        let check = |t: &str| validate_id_token(t, &keys, "https://idp.test", "bioviewer", "n1");
        assert!(
            check(&token(claims(serde_json::json!({"nonce": "replayed"})), Algorithm::RS256, "k1")).is_err(),
            "another sign-in's nonce"
        );
        assert!(check(&token(claims(serde_json::json!({"aud": "another-client"})), Algorithm::RS256, "k1")).is_err(), "audience");
        assert!(check(&token(claims(serde_json::json!({"iss": "https://evil.test"})), Algorithm::RS256, "k1")).is_err(), "issuer");
        let expired = claims(serde_json::json!({"exp": chrono::Utc::now().timestamp() - 3600}));
        assert!(check(&token(expired, Algorithm::RS256, "k1")).is_err(), "expired");
        assert!(check(&token(claims(serde_json::json!({})), Algorithm::HS256, "k1")).is_err(), "a MAC with public material");
        assert!(check(&token(claims(serde_json::json!({})), Algorithm::RS256, "unknown-key")).is_err(), "unknown key");
        let good = token(claims(serde_json::json!({})), Algorithm::RS256, "k1");
        let mut parts: Vec<&str> = good.split('.').collect();
        let tampered_payload = b64url(serde_json::to_string(&claims(serde_json::json!({"sub": "someone-else"}))).unwrap().as_bytes());
        parts[1] = &tampered_payload;
        assert!(check(&parts.join(".")).is_err(), "a changed payload");
        let unsigned = format!("{}.{}.", b64url(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert!(check(&unsigned).is_err(), "alg none");
    }

    #[test]
    fn pro_sante_connect_claims_map_to_the_professional() {
        let userinfo = serde_json::json!({
            "sub": "f:abc", "given_name": "Léa", "family_name": "MOREAU", "SubjectNameID": "810000000045",
            "SubjectRefPro": {"codeCivilite": "DR", "exercices": [{"codeProfession": "10", "activities": [{"raisonSocialeSite": "CH de test", "identifiantStructure": "R1"}]}]}
        });
        let id = identity_from_claims("f:abc", &userinfo);
        assert_eq!(id.display_name, "Dr MOREAU Léa");
        assert_eq!(id.national_id.as_deref(), Some("1.2.250.1.71.4.2.1^810000000045"));
        assert_eq!(id.profession.as_deref(), Some("Médecin"));
        assert_eq!((id.structure_id.as_deref(), id.structure_name.as_deref()), (Some("R1"), Some("CH de test")));
    }

    #[test]
    fn only_https_or_loopback_providers() {
        let settings = |issuer: &str| OidcSettings {
            issuer: issuer.into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            redirect_url: "http://127.0.0.1:3000/auth/oidc/callback".into(),
            scopes: "openid".into(),
            acr_values: None,
        };
        assert!(Oidc::new(settings("http://idp.example")).is_err());
        assert!(Oidc::new(settings("https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet")).is_ok());
        assert!(Oidc::new(settings("http://127.0.0.1:4000")).is_ok());
    }
}
