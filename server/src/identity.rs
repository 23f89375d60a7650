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
