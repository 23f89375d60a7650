//! The typed report the parser produces. Serialised as the JSON of `bioviewer parse`
//! (documented in `docs/parse-json.md`); field names are part of that contract.

use serde::{Deserialize, Serialize};

use super::time::CdaTime;

/// OIDs that identify a French national health identifier (INS).
pub mod oid {
    pub const INS_NIR: &str = "1.2.250.1.213.1.4.8";
    pub const INS_NIA: &str = "1.2.250.1.213.1.4.9";
    pub const INS_NIR_TEST: &str = "1.2.250.1.213.1.4.10";
    pub const INS_NIR_DEMO: &str = "1.2.250.1.213.1.4.11";
    /// Legacy INS-C roots.
    pub const INS_C: [&str; 3] = ["1.2.250.1.213.1.4.2", "1.2.250.1.213.1.4.6", "1.2.250.1.213.1.4.7"];
    pub const LOINC: &str = "2.16.840.1.113883.6.1";
    pub const SNOMED_CT: &str = "2.16.840.1.113883.6.96";
    pub const UCUM: &str = "2.16.840.1.113883.6.8";
    pub const INTERPRETATION: &str = "2.16.840.1.113883.5.83";
    /// FINESS / organisation identifiers used for laboratories.
    pub const STRUCTURE: &str = "1.2.250.1.71.4.2.2";
}

/// What kind of document this is, decided from its root and its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// CR-BIO with a structured body (level 3).
    CrBioStructured,
    /// CR-BIO wrapped in an XSL stylesheet ("auto-présentable"), structured inside.
    CrBioAutoPresentable,
    /// CR-BIO whose body is only a PDF (level 1, `nonXMLBody`).
    CrBioPdfOnly,
    /// A CDA document of another type (pharmacy rapid tests, ...).
    OtherCda,
    /// Not a CDA document at all.
    NotCda,
}

impl DocumentKind {
    /// Whether laboratory results can be read from such a document.
    pub fn has_structured_results(self) -> bool {
        matches!(self, DocumentKind::CrBioStructured | DocumentKind::CrBioAutoPresentable)
    }

    pub fn is_cr_bio(self) -> bool {
        matches!(self, DocumentKind::CrBioStructured | DocumentKind::CrBioAutoPresentable | DocumentKind::CrBioPdfOnly)
    }
}

/// An HL7 instance identifier (`root` OID + optional `extension`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceId {
    pub root: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extension: Option<String>,
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.extension {
            Some(ext) => write!(f, "{}^{}", self.root, ext),
            None => f.write_str(&self.root),
        }
    }
}

/// A coded concept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Code {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub display: Option<String>,
    /// Text the code's `originalText` holds or points to in the narrative.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub original_text: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub translations: Vec<Code>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub null_flavor: Option<String>,
}

impl Code {
    pub fn is_loinc(&self) -> bool {
        self.system.as_deref() == Some(oid::LOINC) && self.code.is_some()
    }

    /// The LOINC code, from the code itself or one of its translations.
    pub fn loinc(&self) -> Option<&str> {
        if self.is_loinc() {
            return self.code.as_deref();
        }
        self.translations.iter().find(|t| t.is_loinc()).and_then(|t| t.code.as_deref())
    }

    /// The best human label: display name, else the narrative text.
    pub fn label(&self) -> Option<&str> {
        self.display.as_deref().or(self.original_text.as_deref())
    }
}

/// A person's name as CDA gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PersonName {
    /// Family name in use (qualifier CL or no qualifier).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub family: Option<String>,
    /// Birth family name (qualifier BR).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub birth_family: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub given: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prefix: Option<String>,
}

impl PersonName {
    /// "FAMILY Given" as French clinical software shows it.
    pub fn display(&self) -> String {
        let family = self.family.as_deref().or(self.birth_family.as_deref()).unwrap_or_default();
        let given = self.given.first().map(String::as_str).unwrap_or_default();
        format!("{family} {given}").trim().to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Undetermined,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Patient {
    /// Every identifier, INS and local (IPP) alike.
    pub ids: Vec<InstanceId>,
    pub name: PersonName,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub birth_date: Option<CdaTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sex: Option<Sex>,
}

impl Patient {
    /// The national identifier (INS-NIR, INS-NIA or a test/demo INS), preferred in that order.
    pub fn ins(&self) -> Option<&InstanceId> {
        [oid::INS_NIR, oid::INS_NIA, oid::INS_NIR_TEST, oid::INS_NIR_DEMO]
            .iter()
            .find_map(|root| self.ids.iter().find(|id| id.root == *root && id.extension.is_some()))
    }
}

/// A laboratory or other organisation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Organization {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

/// A professional taking part in the report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Professional {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<PersonName>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub organization: Option<Organization>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time: Option<CdaTime>,
}

/// `documentationOf/serviceEvent/lab:statusCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// The final report.
    Completed,
    /// A partial report that a complete one will replace.
    Active,
}

/// The document header.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Header {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub set_id: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version_number: Option<u32>,
    /// `relatedDocument typeCode="RPLC"`: the document this one replaces.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub replaces: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub effective_time: Option<CdaTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<ReportStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub patient: Option<Patient>,
    /// The executing laboratory (serviceEvent performer).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub laboratory: Option<Organization>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prescriber: Option<Professional>,
    /// The sampler (participant PRF/PRELV); its time is the collection time.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sampler: Option<Professional>,
    /// The validating biologist (authenticator).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub validator: Option<Professional>,
    /// `encompassingEncounter/effectiveTime/low`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub encounter_start: Option<CdaTime>,
    /// `serviceEvent/effectiveTime/low`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_start: Option<CdaTime>,
    /// Chapter codes listed in the header's serviceEvents.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub chapters: Vec<Code>,
}
