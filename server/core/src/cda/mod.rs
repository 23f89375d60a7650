//! CR-BIO (CDA R2) parsing: bytes in, a typed [`Report`] or a [`ParseError`] out.
//!
//! - [`model`]: the typed report (the JSON contract of `bioviewer parse`).
//! - [`time`]: HL7 timestamps.
//! - `header`: who, what, when (document kind, ids, versions, patient, laboratory, ...).
//!
//! The parser never panics and never hangs on hostile input: XML-level defences live in
//! [`crate::xml`], and every extraction step tolerates missing or odd elements, recording a
//! warning instead of failing the whole document.

pub mod model;
pub mod time;

mod body;
mod header;
mod narrative;
pub mod writer;

use serde::{Deserialize, Serialize};

pub use crate::xml::{Limits, XmlError, XmlErrorKind};
use crate::xml::{Ns, Tree};
pub use model::*;
pub use time::{CdaTime, civil_from_days};

/// LOINC code of a laboratory report (CR-BIO).
pub const CR_BIO_CODE: &str = "11502-2";

/// LOINC code of a point-of-care rapid diagnostic test (TROD) and of its screening attestation.
pub const RAPID_TEST_CODE: &str = "96173-0";

/// One parsed document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub kind: DocumentKind,
    pub header: Header,
    /// Body sections in document order, with the laboratory's narrative as safe HTML.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sections: Vec<Section>,
    /// Every result, in document order; previous results (REFR) follow the result they came with.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub observations: Vec<Observation>,
    /// Comments on entries and batteries (comments on one result are on that result).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub comments: Vec<Comment>,
    /// PDF copies, second-intention reports and images, decoded.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attachments: Vec<Attachment>,
    /// Things the parser noticed and worked around; never fatal.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
}

/// Why a document could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ParseError {
    #[error("unreadable XML: {0}")]
    Xml(#[from] XmlError),
}

/// Parses one document with the default [`Limits`].
pub fn parse(bytes: &[u8]) -> Result<Report, ParseError> {
    parse_with_limits(bytes, &Limits::default())
}

pub fn parse_with_limits(bytes: &[u8], limits: &Limits) -> Result<Report, ParseError> {
    let text = crate::xml::decode(bytes, limits)?;
    let tree = Tree::parse(&text, limits)?;
    Ok(extract(&tree))
}

fn extract(tree: &Tree<'_>) -> Report {
    let mut warnings = Vec::new();
    let (document, wrapped) = match find_clinical_document(tree) {
        Some(found) => found,
        None => return Report::empty(DocumentKind::NotCda, warnings),
    };
    let header = header::extract(tree, document, &mut warnings);
    let body = body::extract(tree, document, &header, &mut warnings);
    let loinc = header.code.as_ref().filter(|c| c.is_loinc()).and_then(|c| c.code.as_deref());
    let is_cr_bio = loinc == Some(CR_BIO_CODE);
    let structured = tree.cda_path(document, &["component", "structuredBody"]).is_some();
    let kind = match (is_cr_bio, wrapped, structured) {
        (false, _, true) if loinc == Some(RAPID_TEST_CODE) => DocumentKind::PointOfCareTest,
        (false, _, _) => DocumentKind::OtherCda,
        (true, true, _) => DocumentKind::CrBioAutoPresentable,
        (true, false, true) => DocumentKind::CrBioStructured,
        (true, false, false) => DocumentKind::CrBioPdfOnly,
    };
    Report {
        kind,
        header,
        sections: body.sections,
        observations: body.observations,
        comments: body.comments,
        attachments: body.attachments,
        warnings,
    }
}

impl Report {
    /// A structured CR-BIO report made of a header and results (generated data and tests; the
    /// writer turns it into a document).
    pub fn structured(header: Header, observations: Vec<Observation>) -> Report {
        Report { observations, ..Report::empty(DocumentKind::CrBioStructured, Vec::new()) }.with_header(header)
    }

    fn with_header(mut self, header: Header) -> Report {
        self.header = header;
        self
    }

    fn empty(kind: DocumentKind, warnings: Vec<String>) -> Report {
        Report {
            kind,
            header: Header::default(),
            sections: Vec::new(),
            observations: Vec::new(),
            comments: Vec::new(),
            attachments: Vec::new(),
            warnings,
        }
    }

    /// Results of this report itself, without the previous results it repeats.
    pub fn current_results(&self) -> impl Iterator<Item = &Observation> {
        self.observations.iter().filter(|o| !o.is_previous_result())
    }
}

/// The `ClinicalDocument` element: the root, or (auto-présentable form) inside an XSL wrapper.
/// Returns it and whether it was wrapped.
fn find_clinical_document(tree: &Tree<'_>) -> Option<(crate::xml::NodeId, bool)> {
    let root = tree.root();
    if tree.is_cda(root, "ClinicalDocument") {
        return Some((root, false));
    }
    if tree.ns(root) == Ns::Xsl {
        return tree.descendants(root).find(|&n| tree.is_cda(n, "ClinicalDocument")).map(|n| (n, true));
    }
    None
}

#[cfg(test)]
pub(crate) mod tests;
