//! TD0.2: does the patient have a DMP, and may it be read? An HL7v3 patient registry query
//! (`PRPA_IN201307UV02`) at `{endpoint}/patients`, answered by `PRPA_IN201306UV02` whose
//! `queryResponseCode` says `OK` (found) or `NF` (no DMP for this INS).

use super::xds::{XdsError, parse_tree};

const HL7: &str = "urn:hl7-org:v3";

/// The request body (inside the SOAP envelope).
pub fn existence_query(ins: &str, ins_oid: &str, structure_id: &str, message_id: &str, creation_time: &str) -> String {
    let e = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    format!(
        "<PRPA_IN201307UV02 xmlns=\"{HL7}\" ITSVersion=\"XML_1.0\"><id root=\"{}\"/><creationTime value=\"{}\"/>\
         <interactionId root=\"2.16.840.1.113883.1.6\" extension=\"PRPA_IN201307UV02\"/><processingCode code=\"P\"/>\
         <processingModeCode code=\"T\"/><acceptAckCode code=\"AL\"/>\
         <receiver typeCode=\"RCV\"><device classCode=\"DEV\" determinerCode=\"INSTANCE\"><id root=\"1.2.250.1.213.4.1.4.2\"/></device></receiver>\
         <sender typeCode=\"SND\"><device classCode=\"DEV\" determinerCode=\"INSTANCE\"><id root=\"{}\"/></device></sender>\
         <controlActProcess classCode=\"CACT\" moodCode=\"EVN\"><code code=\"PRPA_TE201307UV02\" codeSystem=\"2.16.840.1.113883.1.6\"/>\
         <queryByParameter><queryId root=\"{}\"/><statusCode code=\"new\"/><responsePriorityCode code=\"I\"/><parameterList>\
         <patientIdentifier><value root=\"{}\" extension=\"{}\"/><semanticsText>Patient.id</semanticsText></patientIdentifier>\
         </parameterList></queryByParameter></controlActProcess></PRPA_IN201307UV02>",
        e(message_id),
        e(creation_time),
        e(structure_id),
        e(message_id),
        e(ins_oid),
        e(ins)
    )
}

/// The answer the simulator gives (and the DMP's shape of it): found or not.
pub fn existence_answer(found: bool) -> String {
    format!(
        "<PRPA_IN201306UV02 xmlns=\"{HL7}\" ITSVersion=\"XML_1.0\"><interactionId root=\"2.16.840.1.113883.1.6\" extension=\"PRPA_IN201306UV02\"/>\
         <acknowledgement><typeCode code=\"AA\"/></acknowledgement><controlActProcess classCode=\"CACT\" moodCode=\"EVN\">\
         <queryAck><queryResponseCode code=\"{}\"/></queryAck></controlActProcess></PRPA_IN201306UV02>",
        if found { "OK" } else { "NF" }
    )
}

/// The patient's INS the query names (the simulator reads it).
pub fn queried_ins(envelope: &super::xds::Node) -> Option<String> {
    envelope.descendants("patientIdentifier").next()?.child("value")?.attr("extension").map(str::to_string)
}

/// `Ok(true)`: the patient has a DMP that may be read; `Ok(false)`: none for this INS.
pub fn parse_existence_answer(xml: &str) -> Result<bool, XdsError> {
    let root = parse_tree(xml)?;
    if let Some(fault) = super::xds::soap_fault(&root) {
        return Err(fault);
    }
    let code = root
        .descendants("queryResponseCode")
        .next()
        .and_then(|c| c.attr("code"))
        .ok_or_else(|| XdsError::Malformed("no queryResponseCode in the TD0.2 answer".into()))?;
    match code {
        "OK" => Ok(true),
        "NF" => Ok(false),
        other => Err(XdsError::Malformed(format!("TD0.2 answered {other}"))),
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
}
