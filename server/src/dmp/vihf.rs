//! The VIHF ("volet d'identification des habilitations et des fonctions"): the SAML 2.0
//! assertion every DMP request carries in its `wsse:Security` header, stating who asks (the
//! professional, their profession, their structure), how they authenticated, for which patient
//! and why (`normal`, `bris_de_glace`, `centre_15`), signed by the structure's key: an
//! enveloped XML signature, exclusive canonicalisation, RSA-SHA256.
//!
//! The assertion is written directly in its exclusive-canonical form (attributes in canonical
//! order, namespace declarations where they are used, explicit end tags, canonical escaping),
//! so the bytes we digest and sign are the bytes a verifier canonicalises: no general-purpose
//! canonicaliser is needed. `tests` checks the signature with `xmlsec1`, which we did not
//! write.

use base64::Engine as _;
use sha2::{Digest, Sha256};

const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const HL7: &str = "urn:hl7-org:v3";

/// Why the professional reads the record (`PurposeOfUse`, code system 1.2.250.1.213.1.1.4.248).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurposeOfUse {
    Normal,
    /// Break the glass.
    BrisDeGlace,
    /// Emergency regulation centre.
    Centre15,
}

impl PurposeOfUse {
    pub fn code(self) -> &'static str {
        match self {
            PurposeOfUse::Normal => "normal",
            PurposeOfUse::BrisDeGlace => "bris_de_glace",
            PurposeOfUse::Centre15 => "centre_15",
        }
    }

    /// The purpose that goes with Bioviewer's access decision for this patient.
    pub fn of(mode: crate::access::AccessMode) -> PurposeOfUse {
        match mode.dmp_access_mode() {
            "bris_de_glace" => PurposeOfUse::BrisDeGlace,
            "centre_15" => PurposeOfUse::Centre15,
            _ => PurposeOfUse::Normal,
        }
    }
}

/// Everything the assertion states.
#[derive(Debug, Clone)]
pub struct VihfRequest {
    /// The professional's national id (RPPS "8…" or ADELI), the `Subject/NameID`.
    pub professional_id: String,
    pub professional_name: String,
    /// Profession code (TRE_G15, code system 1.2.250.1.71.1.2.7), e.g. "10" for a doctor.
    pub profession_code: String,
    pub profession_name: String,
    pub structure_id: String,
    /// e.g. `SA07^1.2.250.1.71.4.2.4` (cabinet) or `SA01^1.2.250.1.71.4.2.4` (hospital).
    pub activity_sector: String,
    /// `INDIRECTE_RENFORCEE` ("AIR", strong indirect authentication: Pro Santé Connect),
    /// `DIRECTE` (CPS card), `INDIRECTE` (password: refused by the DMP for reading).
    pub authentication_mode: String,
    /// The patient's INS (15 digits) and its OID.
    pub patient_ins: String,
    pub patient_ins_oid: String,
    pub purpose: PurposeOfUse,
    pub software_name: String,
    pub software_version: String,
    pub homologation_id: String,
    /// Assertion id (`_` + UUID) and times (RFC 3339 UTC): given, so tests are reproducible.
    pub assertion_id: String,
    pub issue_instant: String,
    pub not_on_or_after: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VihfError {
    #[error("the structure's key is not a readable RSA key (PKCS#8 or PKCS#1 PEM): {0}")]
    Key(String),
    #[error("the structure's certificate is not a readable PEM certificate")]
    Certificate,
    #[error("signing failed")]
    Signing,
}

/// The structure's signing key and certificate.
pub struct StructureKey {
    key: ring::signature::RsaKeyPair,
    certificate_der: Vec<u8>,
}

fn pem_blocks(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

impl StructureKey {
    pub fn from_pem(key_pem: &str, certificate_pem: &str) -> Result<StructureKey, VihfError> {
        let key = if let Some(der) = pem_blocks(key_pem, "PRIVATE KEY") {
            ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| VihfError::Key(e.to_string()))?
        } else if let Some(der) = pem_blocks(key_pem, "RSA PRIVATE KEY") {
            ring::signature::RsaKeyPair::from_der(&der).map_err(|e| VihfError::Key(e.to_string()))?
        } else {
            return Err(VihfError::Key("no PRIVATE KEY block".into()));
        };
        let certificate_der = pem_blocks(certificate_pem, "CERTIFICATE").ok_or(VihfError::Certificate)?;
        Ok(StructureKey { key, certificate_der })
    }
}

/// Canonical text content: `&`, `<`, `>` and CR escaped (exclusive c14n, §2.3 of C14N 1.0).
fn text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\r', "&#xD;")
}

/// Canonical attribute value: `&`, `<`, `"`, TAB, LF, CR escaped.
fn attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;").replace('\t', "&#x9;").replace('\n', "&#xA;").replace('\r', "&#xD;")
}

/// A SAML attribute with one plain string value.
fn string_attribute(name: &str, value: &str) -> String {
    format!("<saml2:Attribute Name=\"{}\"><saml2:AttributeValue>{}</saml2:AttributeValue></saml2:Attribute>", attr(name), text(value))
}

/// A SAML attribute whose value is an HL7 coded element (`Role`, `PurposeOfUse`). Unqualified
/// attributes first in alphabetical order, then `xsi:type` (canonical order: by namespace URI).
fn coded_attribute(name: &str, element: &str, code: &str, code_system: &str, display: &str) -> String {
    format!(
        "<saml2:Attribute Name=\"{}\"><saml2:AttributeValue><{element} xmlns=\"{HL7}\" xmlns:xsi=\"{XSI}\" code=\"{}\" codeSystem=\"{}\" displayName=\"{}\" xsi:type=\"CE\"></{element}></saml2:AttributeValue></saml2:Attribute>",
        attr(name),
        attr(code),
        attr(code_system),
        attr(display)
    )
}

/// The assertion's content after `Issuer` (where the signature goes) and the `Issuer` itself.
fn assertion_parts(r: &VihfRequest) -> (String, String, String) {
    let open = format!(
        "<saml2:Assertion xmlns:saml2=\"{SAML}\" ID=\"{}\" IssueInstant=\"{}\" Version=\"2.0\">",
        attr(&r.assertion_id),
        attr(&r.issue_instant)
    );
    let issuer =
        format!("<saml2:Issuer Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\">{}</saml2:Issuer>", text(&r.structure_id));
    let purpose_display = match r.purpose {
        PurposeOfUse::Normal => "Accès normal",
        PurposeOfUse::BrisDeGlace => "Accès en mode bris de glace",
        PurposeOfUse::Centre15 => "Accès en mode centre de régulation",
    };
    let attributes = [
        string_attribute("VIHF_Version", "3.0"),
        string_attribute("Identifiant_Structure", &r.structure_id),
        string_attribute("Secteur_Activite", &r.activity_sector),
        string_attribute("Authentification_Mode", &r.authentication_mode),
        string_attribute("urn:oasis:names:tc:xspa:1.0:subject:subject-id", &r.professional_name),
        coded_attribute("urn:oasis:names:tc:xacml:2.0:subject:role", "Role", &r.profession_code, "1.2.250.1.71.1.2.7", &r.profession_name),
        coded_attribute(
            "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
            "PurposeOfUse",
            r.purpose.code(),
            "1.2.250.1.213.1.1.4.248",
            purpose_display,
        ),
        string_attribute(
            "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
            &format!("{}^^^&{}&ISO^NH", r.patient_ins, r.patient_ins_oid),
        ),
        string_attribute("Ressource_URN", "urn:dmp"),
        string_attribute("LPS_Nom", &r.software_name),
        string_attribute("LPS_Version", &r.software_version),
        string_attribute("LPS_ID_HOMOLOGATION_DMP", &r.homologation_id),
    ]
    .concat();
    let rest = format!(
        "<saml2:Subject><saml2:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\">{}</saml2:NameID></saml2:Subject>\
         <saml2:Conditions NotBefore=\"{}\" NotOnOrAfter=\"{}\"></saml2:Conditions>\
         <saml2:AuthnStatement AuthnInstant=\"{}\"><saml2:AuthnContext><saml2:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>\
         <saml2:AttributeStatement>{attributes}</saml2:AttributeStatement></saml2:Assertion>",
        text(&r.professional_id),
        attr(&r.issue_instant),
        attr(&r.not_on_or_after),
        attr(&r.issue_instant),
    );
    (open, issuer, rest)
}

/// `SignedInfo` without its namespace declaration (as it stands inside `ds:Signature`).
fn signed_info_body(reference: &str, digest_b64: &str) -> String {
    format!(
        "<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"></ds:CanonicalizationMethod>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"></ds:SignatureMethod>\
         <ds:Reference URI=\"#{}\"><ds:Transforms>\
         <ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></ds:Transform>\
         <ds:Transform Algorithm=\"{EXC_C14N}\"></ds:Transform></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"></ds:DigestMethod>\
         <ds:DigestValue>{digest_b64}</ds:DigestValue></ds:Reference>",
        attr(reference)
    )
}

/// The signed assertion, ready for the `wsse:Security` header.
pub fn signed_vihf(request: &VihfRequest, key: &StructureKey) -> Result<String, VihfError> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let (open, issuer, rest) = assertion_parts(request);
    // Enveloped signature: the digest covers the assertion without its Signature element.
    let digest = Sha256::digest(format!("{open}{issuer}{rest}").as_bytes());
    let body = signed_info_body(&request.assertion_id, &b64(&digest));
    // Canonicalised alone, SignedInfo carries the ds namespace its ancestor declared.
    let canonical_signed_info = format!("<ds:SignedInfo xmlns:ds=\"{DSIG}\">{body}</ds:SignedInfo>");
    let mut signature = vec![0u8; key.key.public().modulus_len()];
    key.key
        .sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), canonical_signed_info.as_bytes(), &mut signature)
        .map_err(|_| VihfError::Signing)?;
    let signature_element = format!(
        "<ds:Signature xmlns:ds=\"{DSIG}\"><ds:SignedInfo>{body}</ds:SignedInfo><ds:SignatureValue>{}</ds:SignatureValue>\
         <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>",
        b64(&signature),
        b64(&key.certificate_der)
    );
    Ok(format!("{open}{issuer}{signature_element}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../tests/data/vihf-test-structure.key.pem");
    const CERT: &str = include_str!("../../tests/data/vihf-test-structure.cert.pem");

    fn request(purpose: PurposeOfUse) -> VihfRequest {
        VihfRequest {
            professional_id: "810000000011".into(),
            professional_name: "DURAND Sophie".into(),
            profession_code: "10".into(),
            profession_name: "Médecin".into(),
            structure_id: "1010000000011".into(),
            activity_sector: "SA07^1.2.250.1.71.4.2.4".into(),
            authentication_mode: "INDIRECTE_RENFORCEE".into(),
            patient_ins: "279035121518989".into(),
            patient_ins_oid: "1.2.250.1.213.1.4.10".into(),
            purpose,
            software_name: "Bioviewer".into(),
            software_version: env!("CARGO_PKG_VERSION").into(),
            homologation_id: "TEST-HOMOLOGATION".into(),
            assertion_id: "_6c3f9f6e-1b7e-4a55-9d0c-3f8b1f0b2a11".into(),
            issue_instant: "2026-11-26T10:00:00Z".into(),
            not_on_or_after: "2026-11-26T10:05:00Z".into(),
        }
    }

    /// Runs `xmlsec1 --verify` on the assertion with the structure's certificate.
    fn xmlsec1_verifies(xml: &str) -> bool {
        let dir = tempfile::tempdir().expect("temp dir");
        let (file, cert) = (dir.path().join("vihf.xml"), dir.path().join("cert.pem"));
        std::fs::write(&file, xml).unwrap();
        std::fs::write(&cert, CERT).unwrap();
        let output = std::process::Command::new("xmlsec1")
            .args(["--verify", "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", "--pubkey-cert-pem"])
            .arg(&cert)
            .arg(&file)
            .output()
            .expect("xmlsec1 is required for this test (Debian package xmlsec1; `make test` installs it)");
        output.status.success()
    }

    #[test]
    fn xmlsec1_verifies_the_signature_in_every_access_mode() {
        let key = StructureKey::from_pem(KEY, CERT).unwrap();
        for purpose in [PurposeOfUse::Normal, PurposeOfUse::BrisDeGlace, PurposeOfUse::Centre15] {
            let xml = signed_vihf(&request(purpose), &key).unwrap();
            assert!(xml.contains(&format!("code=\"{}\"", purpose.code())), "{xml}");
            assert!(xmlsec1_verifies(&xml), "xmlsec1 refused the {purpose:?} VIHF: {xml}");
        }
    }

    #[test]
    fn xmlsec1_refuses_a_changed_assertion() {
        let key = StructureKey::from_pem(KEY, CERT).unwrap();
        let xml = signed_vihf(&request(PurposeOfUse::Normal), &key).unwrap();
        // Someone turns a normal access into another patient's, or into break-the-glass.
        assert!(!xmlsec1_verifies(&xml.replace("279035121518989", "279035121518990")));
        assert!(!xmlsec1_verifies(&xml.replace("code=\"normal\"", "code=\"bris_de_glace\"")));
    }

    #[test]
    fn names_and_values_are_escaped() {
        let key = StructureKey::from_pem(KEY, CERT).unwrap();
        let mut r = request(PurposeOfUse::Normal);
        r.professional_name = "O'Brien & <Fils> \"Jr\"".into();
        let xml = signed_vihf(&r, &key).unwrap();
        assert!(xml.contains("O'Brien &amp; &lt;Fils&gt; \"Jr\""), "{xml}");
        assert!(xmlsec1_verifies(&xml));
    }

    #[test]
    fn the_access_decision_sets_the_purpose() {
        use crate::access::AccessMode;
        assert_eq!(PurposeOfUse::of(AccessMode::BreakTheGlass { expires_at: 0, regulation: false }), PurposeOfUse::BrisDeGlace);
        assert_eq!(PurposeOfUse::of(AccessMode::BreakTheGlass { expires_at: 0, regulation: true }), PurposeOfUse::Centre15);
        assert_eq!(PurposeOfUse::of(AccessMode::AttendingGp), PurposeOfUse::Normal);
    }

    #[test]
    fn a_key_that_is_not_rsa_pem_is_refused() {
        assert!(StructureKey::from_pem("not a key", CERT).is_err());
        assert!(StructureKey::from_pem(KEY, "not a certificate").is_err());
    }
}
