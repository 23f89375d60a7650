//! TD0.2: does the patient have a DMP, and may it be read? An HL7v3 patient registry query
//! (`PRPA_IN201307UV02`) at `{endpoint}/patients`, answered by `PRPA_IN201308UV02` whose
//! acknowledgement says whether the query was processed (`AA`; `AE` error, `AR` reject) and
//! whose `queryResponseCode` says `OK` (found) or `NF` (no DMP for this INS).
//!
//! HL7v3 instance identifiers are bare: `root` is an OID or a UUID, never a `urn:uuid:` URI
//! (that form belongs to WS-Addressing's MessageID, not to HL7 ids).

use super::xds::{XdsError, parse_tree};

const HL7: &str = "urn:hl7-org:v3";
/// National structure identifiers (the VIHF's `Identifiant_Structure` is one): the root of the
/// sending device's id, the structure's id its extension.
const STRUCTURE_ID_ROOT: &str = "1.2.250.1.71.4.2.2";

/// A message id as HL7v3 wants it: the bare UUID of a `urn:uuid:` URI.
fn bare(id: &str) -> &str {
    id.strip_prefix("urn:uuid:").unwrap_or(id)
}

/// The request body (inside the SOAP envelope). `message_id` may be the envelope's
/// `urn:uuid:` MessageID: the HL7 ids carry its bare UUID.
pub fn existence_query(ins: &str, ins_oid: &str, structure_id: &str, message_id: &str, creation_time: &str) -> String {
    let e = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    format!(
        "<PRPA_IN201307UV02 xmlns=\"{HL7}\" ITSVersion=\"XML_1.0\"><id root=\"{}\"/><creationTime value=\"{}\"/>\
         <interactionId root=\"2.16.840.1.113883.1.6\" extension=\"PRPA_IN201307UV02\"/><processingCode code=\"P\"/>\
         <processingModeCode code=\"T\"/><acceptAckCode code=\"AL\"/>\
         <receiver typeCode=\"RCV\"><device classCode=\"DEV\" determinerCode=\"INSTANCE\"><id root=\"1.2.250.1.213.4.1.4.2\"/></device></receiver>\
         <sender typeCode=\"SND\"><device classCode=\"DEV\" determinerCode=\"INSTANCE\"><id root=\"{STRUCTURE_ID_ROOT}\" extension=\"{}\"/></device></sender>\
         <controlActProcess classCode=\"CACT\" moodCode=\"EVN\"><code code=\"PRPA_TE201307UV02\" codeSystem=\"2.16.840.1.113883.1.6\"/>\
         <queryByParameter><queryId root=\"{}\"/><statusCode code=\"new\"/><responsePriorityCode code=\"I\"/><parameterList>\
         <patientIdentifier><value root=\"{}\" extension=\"{}\"/><semanticsText>Patient.id</semanticsText></patientIdentifier>\
         </parameterList></queryByParameter></controlActProcess></PRPA_IN201307UV02>",
        e(bare(message_id)),
        e(creation_time),
        e(structure_id),
        e(bare(message_id)),
        e(ins_oid),
        e(ins)
    )
}

/// The answer the simulator gives (and the DMP's shape of it): found or not.
pub fn existence_answer(found: bool) -> String {
    format!(
        "<PRPA_IN201308UV02 xmlns=\"{HL7}\" ITSVersion=\"XML_1.0\"><interactionId root=\"2.16.840.1.113883.1.6\" extension=\"PRPA_IN201308UV02\"/>\
         <acknowledgement><typeCode code=\"AA\"/></acknowledgement><controlActProcess classCode=\"CACT\" moodCode=\"EVN\">\
         <queryAck><queryResponseCode code=\"{}\"/></queryAck></controlActProcess></PRPA_IN201308UV02>",
        if found { "OK" } else { "NF" }
    )
}

/// An application error acknowledgement (the simulator's answer to a malformed query).
pub fn existence_refusal() -> String {
    existence_answer(false).replace("<typeCode code=\"AA\"/>", "<typeCode code=\"AE\"/>")
}

/// The patient's INS the query names (the simulator reads it).
pub fn queried_ins(envelope: &super::xds::Node) -> Option<String> {
    envelope.descendants("patientIdentifier").next()?.child("value")?.attr("extension").map(str::to_string)
}

/// Whether a query's message id is a bare OID or UUID (the simulator refuses others, as an
/// HL7v3 receiver validating its input would).
pub fn has_bare_message_id(envelope: &super::xds::Node) -> bool {
    let root = envelope.descendants("PRPA_IN201307UV02").next().and_then(|q| q.child("id")).and_then(|id| id.attr("root"));
    root.is_some_and(|r| {
        uuid::Uuid::parse_str(r).is_ok_and(|_| r.len() == 36)
            || (!r.is_empty() && r.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    })
}

/// `Ok(true)`: the patient has a DMP that may be read; `Ok(false)`: none for this INS. An
/// acknowledgement other than `AA` is an error whatever the response code.
pub fn parse_existence_answer(xml: &str) -> Result<bool, XdsError> {
    let malformed = |e: XdsError| match e {
        XdsError::Malformed(why) => XdsError::PatientsMalformed(why),
        other => other,
    };
    let root = parse_tree(xml).map_err(malformed)?;
    if let Some(fault) = super::xds::soap_fault(&root) {
        return Err(fault);
    }
    let answer = root
        .descendants("PRPA_IN201308UV02")
        .next()
        .or((root.name == "PRPA_IN201308UV02").then_some(&root))
        .ok_or_else(|| XdsError::PatientsMalformed("no PRPA_IN201308UV02 in the TD0.2 answer".into()))?;
    let acknowledgement = answer
        .child("acknowledgement")
        .and_then(|a| a.child("typeCode"))
        .and_then(|t| t.attr("code"))
        .ok_or_else(|| XdsError::PatientsMalformed("no acknowledgement typeCode in the TD0.2 answer".into()))?;
    match acknowledgement {
        "AA" | "CA" => {}
        other => return Err(XdsError::PatientsRefused(other.to_string())),
    }
    let code = answer
        .descendants("queryResponseCode")
        .next()
        .and_then(|c| c.attr("code"))
        .ok_or_else(|| XdsError::PatientsMalformed("no queryResponseCode in the TD0.2 answer".into()))?;
    match code {
        "OK" => Ok(true),
        "NF" => Ok(false),
        other => Err(XdsError::PatientsMalformed(format!("TD0.2 answered {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_the_patient_and_the_answer_reads_back() {
        let q = existence_query("279035121518989", "1.2.250.1.213.1.4.10", "1010000000011", "m1", "20261126100000");
        let tree = parse_tree(&q).unwrap();
        assert_eq!(queried_ins(&tree).as_deref(), Some("279035121518989"));
        assert_eq!(parse_existence_answer(&existence_answer(true)), Ok(true));
        assert_eq!(parse_existence_answer(&existence_answer(false)), Ok(false));
        assert!(parse_existence_answer("<PRPA_IN201306UV02/>").is_err());
    }

    /// The root of every `id` element of the query (`id`, `queryId`, the devices' ids).
    fn ids(tree: &crate::dmp::xds::Node) -> Vec<(String, Option<String>)> {
        ["id", "queryId"]
            .iter()
            .flat_map(|name| {
                tree.descendants(name).map(|n| (n.attr("root").unwrap_or_default().to_string(), n.attr("extension").map(str::to_string)))
            })
            .collect()
    }

    #[test]
    fn td02_ids_are_bare_oids_or_uuids_and_the_sending_device_has_an_oid_root() {
        let q = existence_query(
            "279035121518989",
            "1.2.250.1.213.1.4.10",
            "1010000000011",
            "urn:uuid:6f1c1a52-3c4d-4e57-9b2a-2d1f0c9a7e11",
            "20261126100000",
        );
        let tree = parse_tree(&q).unwrap();
        let ids = ids(&tree);
        assert!(ids.len() >= 4, "{ids:?}");
        let is_oid = |s: &str| !s.is_empty() && s.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        let is_uuid = |s: &str| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36;
        for (root, _) in &ids {
            assert!(is_oid(root) || is_uuid(root), "HL7v3 ids are bare OIDs or UUIDs, not {root}");
        }
        let sender = tree.descendants("sender").next().unwrap().descendants("id").next().unwrap();
        assert!(is_oid(sender.attr("root").unwrap()), "the sending device's id has an OID root");
        assert_eq!(sender.attr("extension"), Some("1010000000011"), "the structure is its extension");
    }

    #[test]
    fn td02_is_answered_by_prpa_in201308uv02_and_its_acknowledgement_is_read() {
        let answer = existence_answer(true);
        let tree = parse_tree(&answer).unwrap();
        assert_eq!(tree.name, "PRPA_IN201308UV02");
        assert_eq!(tree.child("interactionId").and_then(|i| i.attr("extension")), Some("PRPA_IN201308UV02"));
        // An application error or reject is an error, whatever the query's response code says.
        for code in ["AE", "AR"] {
            let refused = answer.replace("<typeCode code=\"AA\"/>", &format!("<typeCode code=\"{code}\"/>"));
            assert!(refused.contains(code));
            let error = parse_existence_answer(&refused).unwrap_err();
            assert!(matches!(&error, XdsError::PatientsRefused(c) if c == code), "{error}");
        }
        assert!(matches!(parse_existence_answer(&existence_refusal()), Err(XdsError::PatientsRefused(_))));
    }
}
