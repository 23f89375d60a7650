//! Which identity (names, birth date, sex) a patient keeps when a document arrives: a plain
//! decision over what the store hands it, tested without a database.
//!
//! The rule: the identity comes from the most trusted source that gave one (the DMP, then the
//! operator, then an upload) and does not silently change. A document of the same or a less
//! trusted source that contradicts it is stored and flagged (the history shows the conflict),
//! and the identity stays; one that only adds what was missing fills it in. A more trusted
//! source sets the identity (an identity learned from an upload gives way to the laboratory's),
//! and an alert says so when it differed.

use bioviewer_core::normalise::{PatientIdentity, Provenance, identity_differences};

use crate::domain::PatientId;

/// Why two records cannot be linked as one person's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotOnePerson {
    /// Both are known by an INS: two INS numbers are two people (one number is one record).
    #[error("both records have an INS")]
    TwoIns,
    #[error("their birth dates differ")]
    BirthDate,
    #[error("their sexes differ")]
    Sex,
}

/// Whether two records may be linked as one person's: a record known by an INS and one known
/// by no INS (an INS-C record, a laboratory's local id), whose birth dates and sexes do not
/// contradict each other (fields one leaves out contradict nothing).
pub(crate) fn may_link(a: &crate::store::PatientRecord, b: &crate::store::PatientRecord) -> Result<(), NotOnePerson> {
    if a.has_ins() && b.has_ins() {
        return Err(NotOnePerson::TwoIns);
    }
    let differences = identity_differences(&a.identity(), &b.identity());
    if differences.birth_date {
        return Err(NotOnePerson::BirthDate);
    }
    if differences.sex {
        return Err(NotOnePerson::Sex);
    }
    Ok(())
}

/// What the store found for a document's patient identifiers, for [`attribute`].
#[derive(Debug, Clone, Default)]
pub(crate) struct AttributionFacts {
    /// The DMP returned the document in answer to a query for this INS number.
    pub dmp_query: Option<String>,
    /// The record with that INS number, if any.
    pub dmp_patient: Option<PatientId>,
    /// The document's own INS number, if it names a valid one.
    pub header_ins: Option<String>,
    /// The record with that INS number, if any.
    pub header_ins_patient: Option<PatientId>,
    /// The records already known by one of the document's other identifiers (INS-C, local
    /// ids...), without repeats.
    pub id_patients: Vec<PatientId>,
}

/// Which record a document goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attribution {
    /// An existing record; `learn_ids`: the document's other identifiers become this
    /// record's too.
    To { patient: PatientId, learn_ids: bool },
    /// A new record, keyed by `key`.
    New { key: NewKey, learn_ids: bool },
    /// No record: the document is stored unattributed, with the reason.
    Unattributed { reason: &'static str },
}

/// The identifier a new record is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewKey {
    /// The INS the DMP was asked about.
    DmpQuery,
    /// The document's INS.
    HeaderIns,
    /// The document's first other identifier (an INS-C first): a record marked "no INS".
    HeaderOther,
}

/// The attribution rules (docs/identity.md):
/// 1. a document the DMP returned for a patient is that patient's, whatever identifier its
///    header carries; a header naming another INS is filed there all the same (the history
///    rejects it and shows the conflict) and teaches no identifier;
/// 2. otherwise a document with an INS goes to the record of that INS number; one naming only
///    other identifiers goes to the one record already known by them, to a new record when
///    none is (nothing is merged on name or birth date), and to none when two records are;
/// 3. only trusted sources (the DMP, the operator) teach a record new identifiers: an upload
///    never makes later documents follow it. A new record learns its document's identifiers.
pub(crate) fn attribute(facts: &AttributionFacts, from: Provenance) -> Attribution {
    if let Some(query) = &facts.dmp_query {
        let agrees = facts.header_ins.as_ref().is_none_or(|ins| ins == query);
        return match facts.dmp_patient {
            Some(patient) => Attribution::To { patient, learn_ids: agrees },
            None => Attribution::New { key: NewKey::DmpQuery, learn_ids: agrees },
        };
    }
    if facts.header_ins.is_some() {
        return match facts.header_ins_patient {
            Some(patient) => Attribution::To { patient, learn_ids: from.is_trusted() },
            None => Attribution::New { key: NewKey::HeaderIns, learn_ids: true },
        };
    }
    match facts.id_patients.as_slice() {
        [] => Attribution::New { key: NewKey::HeaderOther, learn_ids: true },
        [patient] => Attribution::To { patient: *patient, learn_ids: from.is_trusted() },
        _ => Attribution::Unattributed { reason: "its identifiers belong to two different records" },
    }
}

/// What to do with the stored identity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IdentityDecision {
    /// Keep it as it is; `conflict` when the document contradicts it.
    Keep { conflict: bool },
    /// Write this identity, learned from this source; `replaced_different` when a more trusted
    /// source replaced an identity that said otherwise.
    Write { identity: PatientIdentity, source: Provenance, replaced_different: bool },
}

/// The identity to keep after a document of `from` naming `incoming` arrives for a patient
/// whose stored identity is `current` (`None`: a new patient).
pub(crate) fn decide(current: Option<(&PatientIdentity, Provenance)>, incoming: &PatientIdentity, from: Provenance) -> IdentityDecision {
    let Some((current, current_source)) = current else {
        return IdentityDecision::Write { identity: incoming.clone(), source: from, replaced_different: false };
    };
    let differences = identity_differences(current, incoming);
    let differs = differences.birth_date || differences.sex || differences.name;
    if from.rank() > current_source.rank() {
        // The more trusted source wins; what it leaves out is kept.
        let identity = filled(incoming, current);
        return IdentityDecision::Write { identity, source: from, replaced_different: differs };
    }
    if differs {
        return IdentityDecision::Keep { conflict: true };
    }
    let identity = filled(current, incoming);
    if from.rank() == current_source.rank() && identity != *current {
        return IdentityDecision::Write { identity, source: current_source, replaced_different: false };
    }
    IdentityDecision::Keep { conflict: false }
}

/// `first`, with what it leaves out taken from `second`.
fn filled(first: &PatientIdentity, second: &PatientIdentity) -> PatientIdentity {
    PatientIdentity {
        ins: first.ins.clone(),
        ins_root: first.ins_root.clone(),
        family_name: first.family_name.clone().or_else(|| second.family_name.clone()),
        given_name: first.given_name.clone().or_else(|| second.given_name.clone()),
        birth_date: first.birth_date.or(second.birth_date),
        sex: first.sex.or(second.sex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bioviewer_core::cda::{CdaTime, Sex};

    const INS: &str = "279035121518989";

    #[test]
    fn a_dmp_document_is_the_queried_patients_whatever_its_header_says() {
        let p = PatientId::new();
        let facts = AttributionFacts { dmp_query: Some(INS.into()), dmp_patient: Some(p), ..Default::default() };
        assert_eq!(attribute(&facts, Provenance::Dmp), Attribution::To { patient: p, learn_ids: true });
        // Another INS in the header: filed with the patient (the history rejects it), teaches nothing.
        let other = AttributionFacts { header_ins: Some("180124562302465".into()), ..facts.clone() };
        assert_eq!(attribute(&other, Provenance::Dmp), Attribution::To { patient: p, learn_ids: false });
        let first = AttributionFacts { dmp_patient: None, ..facts };
        assert_eq!(attribute(&first, Provenance::Dmp), Attribution::New { key: NewKey::DmpQuery, learn_ids: true });
    }

    #[test]
    fn a_file_naming_only_an_ins_c_goes_to_the_record_known_by_it_or_a_new_one() {
        let p = PatientId::new();
        let known = AttributionFacts { id_patients: vec![p], ..Default::default() };
        assert_eq!(attribute(&known, Provenance::Operator), Attribution::To { patient: p, learn_ids: true });
        assert_eq!(attribute(&known, Provenance::Upload), Attribution::To { patient: p, learn_ids: false }, "an upload teaches nothing");
        assert_eq!(attribute(&AttributionFacts::default(), Provenance::Upload), Attribution::New { key: NewKey::HeaderOther, learn_ids: true });
        let two = AttributionFacts { id_patients: vec![p, PatientId::new()], ..Default::default() };
        assert!(matches!(attribute(&two, Provenance::Operator), Attribution::Unattributed { .. }), "never merged by guess");
    }

    #[test]
    fn an_ins_decides_before_any_other_identifier() {
        let by_ins = PatientId::new();
        let facts = AttributionFacts {
            header_ins: Some(INS.into()),
            header_ins_patient: Some(by_ins),
            id_patients: vec![PatientId::new()],
            ..Default::default()
        };
        assert_eq!(attribute(&facts, Provenance::Upload), Attribution::To { patient: by_ins, learn_ids: false });
    }

    fn person(family: &str, birth: &str, sex: Sex) -> PatientIdentity {
        PatientIdentity {
            ins: "279035121518989".into(),
            ins_root: "1.2.250.1.213.1.4.8".into(),
            family_name: Some(family.into()),
            given_name: Some("CLAIRE".into()),
            birth_date: CdaTime::parse_hl7(birth).ok(),
            sex: Some(sex),
        }
    }

    #[test]
    fn a_new_patient_takes_the_documents_identity() {
        let claire = person("MARTIN", "19790328", Sex::Female);
        assert_eq!(
            decide(None, &claire, Provenance::Upload),
            IdentityDecision::Write { identity: claire, source: Provenance::Upload, replaced_different: false }
        );
    }

    #[test]
    fn an_upload_never_rewrites_the_laboratorys_identity() {
        let claire = person("MARTIN", "19790328", Sex::Female);
        let forged = person("DUPONT", "19500101", Sex::Male);
        assert_eq!(decide(Some((&claire, Provenance::Dmp)), &forged, Provenance::Upload), IdentityDecision::Keep { conflict: true });
        assert_eq!(decide(Some((&claire, Provenance::Operator)), &forged, Provenance::Upload), IdentityDecision::Keep { conflict: true });
    }

    #[test]
    fn a_later_document_of_the_same_source_does_not_silently_change_the_identity() {
        let claire = person("MARTIN", "19790328", Sex::Female);
        let other = person("MARTIN", "19790329", Sex::Female);
        assert_eq!(decide(Some((&claire, Provenance::Dmp)), &other, Provenance::Dmp), IdentityDecision::Keep { conflict: true });
        // Case and accents are not a conflict.
        let spelled = PatientIdentity { family_name: Some("Martin".into()), given_name: Some("Claire".into()), ..claire.clone() };
        assert_eq!(decide(Some((&claire, Provenance::Dmp)), &spelled, Provenance::Dmp), IdentityDecision::Keep { conflict: false });
    }

    #[test]
    fn the_laboratorys_identity_replaces_one_learned_from_an_upload() {
        let forged = person("DUPONT", "19500101", Sex::Male);
        let claire = person("MARTIN", "19790328", Sex::Female);
        assert_eq!(
            decide(Some((&forged, Provenance::Upload)), &claire, Provenance::Dmp),
            IdentityDecision::Write { identity: claire, source: Provenance::Dmp, replaced_different: true }
        );
    }

    #[test]
    fn missing_fields_are_filled_by_the_same_source_only() {
        let partial = PatientIdentity { birth_date: None, ..person("MARTIN", "19790328", Sex::Female) };
        let full = person("MARTIN", "19790328", Sex::Female);
        assert_eq!(
            decide(Some((&partial, Provenance::Operator)), &full, Provenance::Operator),
            IdentityDecision::Write { identity: full.clone(), source: Provenance::Operator, replaced_different: false }
        );
        assert_eq!(decide(Some((&partial, Provenance::Operator)), &full, Provenance::Upload), IdentityDecision::Keep { conflict: false });
    }
}
