//! Writes a [`Report`] as a CR-BIO document, in the shape of the national agency's examples.
//!
//! Used by the parser's property test (write a random report, parse it, get it back) and by the
//! demo-data generator. It writes what the parser reads: header, chapters (and sub-chapters),
//! entries with the specimen collection, batteries, isolates (with batteries inside), results
//! with every value type, interpretation, method, reference ranges (with preconditions),
//! performer overrides, comments and previous results (REFR), the narrative each result points
//! to, and attachments.

use std::fmt::Write as _;

use base64::Engine;

use super::model::*;
use super::time::CdaTime;
use super::{CR_BIO_CODE, Report};

/// Escapes text for element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn hl7_time(t: &CdaTime) -> String {
    let mut s = format!("{:04}", t.year);
    for part in [t.month, t.day, t.hour, t.minute, t.second] {
        match part {
            Some(p) => {
                let _ = write!(s, "{p:02}");
            }
            None => break,
        }
    }
    if let Some(o) = t.offset_minutes {
        let sign = if o < 0 { '-' } else { '+' };
        let _ = write!(s, "{sign}{:02}{:02}", o.abs() / 60, o.abs() % 60);
    }
    s
}

struct Writer {
    out: String,
    /// Counter for narrative anchors.
    anchors: usize,
}

impl Writer {
    fn line(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn anchor(&mut self) -> String {
        self.anchors += 1;
        format!("r{}", self.anchors)
    }
}

fn attr(name: &str, value: Option<&str>) -> String {
    value.map(|v| format!(" {name}=\"{}\"", escape(v))).unwrap_or_default()
}

fn id_element(tag: &str, id: &InstanceId) -> String {
    format!("<{tag} root=\"{}\"{}/>", escape(&id.root), attr("extension", id.extension.as_deref()))
}

fn name_element(name: &PersonName) -> String {
    let mut s = String::from("<name>");
    if let Some(f) = &name.birth_family {
        let _ = write!(s, "<family qualifier=\"BR\">{}</family>", escape(f));
    }
    if let Some(f) = &name.family
        && name.birth_family.as_ref() != Some(f)
    {
        let _ = write!(s, "<family qualifier=\"CL\">{}</family>", escape(f));
    }
    for g in &name.given {
        let _ = write!(s, "<given>{}</given>", escape(g));
    }
    s.push_str("</name>");
    s
}

fn organization_element(tag: &str, org: &Organization) -> String {
    let mut s = format!("<{tag}>");
    if let Some(id) = &org.id {
        s.push_str(&id_element("id", id));
    }
    if let Some(n) = &org.name {
        let _ = write!(s, "<name>{}</name>", escape(n));
    }
    let _ = write!(s, "</{tag}>");
    s
}

/// A coded element; `original_text` goes into the narrative list and is referenced.
fn code_element(w: &mut Writer, tag: &str, code: &Code, narrative: &mut Vec<(String, String)>, extra: &str) -> String {
    let mut s = format!(
        "<{tag}{}{}{}{}{extra}",
        attr("code", code.code.as_deref()),
        attr("codeSystem", code.system.as_deref()),
        attr("displayName", code.display.as_deref()),
        attr("nullFlavor", code.null_flavor.as_deref()),
    );
    if code.original_text.is_none() && code.translations.is_empty() {
        s.push_str("/>");
        return s;
    }
    s.push('>');
    if let Some(text) = &code.original_text {
        let anchor = w.anchor();
        let _ = write!(s, "<originalText><reference value=\"#{anchor}\"/></originalText>");
        narrative.push((anchor, text.clone()));
    }
    for t in &code.translations {
        s.push_str(&code_element(w, "translation", t, narrative, ""));
    }
    let _ = write!(s, "</{tag}>");
    s
}

fn quantity_attrs(q: &Quantity) -> String {
    format!(" value=\"{}\"{}", escape(q.value.as_str()), attr("unit", q.unit.as_deref()))
}

fn value_element(w: &mut Writer, value: &Value, narrative: &mut Vec<(String, String)>) -> String {
    match value {
        Value::Quantity(q) => format!("<value xsi:type=\"PQ\"{}/>", quantity_attrs(q)),
        Value::Censored { comparator, quantity } => {
            let (bound, inclusive) = match comparator {
                Comparator::Less => ("high", false),
                Comparator::LessOrEqual => ("high", true),
                Comparator::Greater => ("low", false),
                Comparator::GreaterOrEqual => ("low", true),
            };
            format!("<value xsi:type=\"IVL_PQ\"><{bound}{} inclusive=\"{inclusive}\"/></value>", quantity_attrs(quantity))
        }
        Value::Interval { low, high } => {
            let mut s = String::from("<value xsi:type=\"IVL_PQ\">");
            if let Some(l) = low {
                let _ = write!(s, "<low{}/>", quantity_attrs(l));
            }
            if let Some(h) = high {
                let _ = write!(s, "<high{}/>", quantity_attrs(h));
            }
            s.push_str("</value>");
            s
        }
        Value::Real { value } => format!("<value xsi:type=\"REAL\" value=\"{}\"/>", escape(value.as_str())),
        Value::Integer { value } => format!("<value xsi:type=\"INT\" value=\"{value}\"/>"),
        Value::Coded(code) => code_element(w, "value", code, narrative, " xsi:type=\"CD\""),
        Value::Text { text } => format!("<value xsi:type=\"ST\">{}</value>", escape(text)),
        Value::Time { time } => format!("<value xsi:type=\"TS\" value=\"{}\"/>", hl7_time(time)),
        Value::Ratio { numerator, denominator } => format!(
            "<value xsi:type=\"RTO_PQ_PQ\"><numerator xsi:type=\"PQ\"{}/><denominator xsi:type=\"PQ\"{}/></value>",
            quantity_attrs(numerator),
            quantity_attrs(denominator)
        ),
        Value::Null { flavor } => format!("<value xsi:type=\"PQ\" nullFlavor=\"{}\"/>", escape(flavor)),
        Value::Unreadable { xsi_type, raw, .. } => format!("<value xsi:type=\"{}\">{}</value>", escape(xsi_type), escape(raw)),
    }
}

fn observation_element(w: &mut Writer, report: &Report, index: usize, narrative: &mut Vec<(String, String)>, wrapper: &str) -> String {
    let o = &report.observations[index];
    let mut s = String::new();
    let _ = write!(s, "<{wrapper}><observation classCode=\"OBS\" moodCode=\"EVN\">");
    if o.previous_of.is_none() {
        s.push_str("<templateId root=\"1.3.6.1.4.1.19376.1.3.1.6\"/><templateId root=\"1.2.250.1.213.1.1.3.80\"/>");
    }
    s.push_str(&code_element(w, "code", &o.code, narrative, ""));
    let status = match &o.status {
        ResultStatus::Completed => "completed".to_string(),
        ResultStatus::Aborted => "aborted".to_string(),
        ResultStatus::Other(other) => other.clone(),
    };
    let _ = write!(s, "<statusCode code=\"{}\"/>", escape(&status));
    if let Some(t) = &o.effective_time {
        let _ = write!(s, "<effectiveTime value=\"{}\"/>", hl7_time(t));
    }
    if let Some(v) = &o.value {
        s.push_str(&value_element(w, v, narrative));
    }
    for i in &o.interpretation {
        s.push_str(&code_element(w, "interpretationCode", i, narrative, ""));
    }
    if let Some(m) = &o.method {
        s.push_str(&code_element(w, "methodCode", m, narrative, ""));
    }
    if o.performer_overridden
        && let Some(p) = &o.performer
    {
        let _ = write!(
            s,
            "<performer typeCode=\"PRF\"><assignedEntity>{}</assignedEntity></performer>",
            organization_element("representedOrganization", p)
        );
    }
    for c in &o.comments {
        let anchor = w.anchor();
        narrative.push((anchor.clone(), c.clone()));
        let _ = write!(
            s,
            "<entryRelationship typeCode=\"SUBJ\" inversionInd=\"true\"><act classCode=\"ACT\" moodCode=\"EVN\"><code code=\"48767-8\" codeSystem=\"2.16.840.1.113883.6.1\"/><text><reference value=\"#{anchor}\"/></text><statusCode code=\"completed\"/></act></entryRelationship>"
        );
    }
    // Previous results of this one follow it directly in the report's order.
    for previous in report.observations.iter().filter(|p| p.previous_of == Some(index)) {
        s.push_str(&observation_element(w, report, previous.index, narrative, "entryRelationship typeCode=\"REFR\""));
    }
    for r in &o.reference_ranges {
        s.push_str("<referenceRange typeCode=\"REFV\"><observationRange classCode=\"OBS\" moodCode=\"EVN.CRT\">");
        if let Some(text) = &r.text {
            let _ = write!(s, "<text>{}</text>", escape(text));
        }
        if r.low.is_some() || r.high.is_some() {
            s.push_str("<value xsi:type=\"IVL_PQ\">");
            if let Some(l) = &r.low {
                let _ = write!(s, "<low{}/>", quantity_attrs(l));
            }
            if let Some(h) = &r.high {
                let _ = write!(s, "<high{}/>", quantity_attrs(h));
            }
            s.push_str("</value>");
        }
        if let Some(p) = &r.precondition {
            let _ = write!(
                s,
                "<lab:precondition><lab:criterion><lab:value xsi:type=\"ST\">{}</lab:value></lab:criterion></lab:precondition>",
                escape(p)
            );
        }
        s.push_str("</observationRange></referenceRange>");
    }
    let closing = wrapper.split_whitespace().next().unwrap_or(wrapper);
    let _ = write!(s, "</observation></{closing}>");
    s
}

/// The grouping key of a run of results written in one entry.
fn group_key(o: &Observation) -> (Option<&Code>, Option<&Code>, Option<&Code>, Option<&Code>) {
    (o.chapter.as_ref(), o.sub_chapter.as_ref(), o.isolate.as_ref().map(|i| &i.organism), o.battery.as_ref())
}

/// Writes the report as a structured CR-BIO document.
pub fn write_cr_bio(report: &Report) -> String {
    let h = &report.header;
    let mut w = Writer { out: String::with_capacity(16 * 1024 + report.observations.len() * 1200), anchors: 0 };
    w.line("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    w.line("<ClinicalDocument xmlns=\"urn:hl7-org:v3\" xmlns:lab=\"urn:oid:1.3.6.1.4.1.19376.1.3.2\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">");
    w.line("<realmCode code=\"FR\"/><typeId root=\"2.16.840.1.113883.1.3\" extension=\"POCD_HD000040\"/>");
    w.line("<templateId root=\"1.2.250.1.213.1.1.1.1\"/><templateId root=\"1.3.6.1.4.1.19376.1.3.3\"/><templateId root=\"1.2.250.1.213.1.1.1.55\"/>");
    if let Some(id) = &h.id {
        w.line(&id_element("id", id));
    }
    let code = h.code.clone().unwrap_or(Code {
        code: Some(CR_BIO_CODE.into()),
        system: Some(oid::LOINC.into()),
        display: Some("CR d'examens biologiques".into()),
        ..Code::default()
    });
    let mut narrative = Vec::new();
    let code_xml = code_element(&mut w, "code", &code, &mut narrative, "");
    w.line(&code_xml);
    if let Some(t) = &h.title {
        w.line(&format!("<title>{}</title>", escape(t)));
    }
    if let Some(t) = &h.effective_time {
        w.line(&format!("<effectiveTime value=\"{}\"/>", hl7_time(t)));
    }
    w.line("<confidentialityCode code=\"N\" codeSystem=\"2.16.840.1.113883.5.25\"/><languageCode code=\"fr-FR\"/>");
    if let Some(id) = &h.set_id {
        w.line(&id_element("setId", id));
    }
    if let Some(v) = h.version_number {
        w.line(&format!("<versionNumber value=\"{v}\"/>"));
    }
    if let Some(p) = &h.patient {
        let mut s = String::from("<recordTarget><patientRole>");
        for id in &p.ids {
            s.push_str(&id_element("id", id));
        }
        s.push_str("<patient>");
        s.push_str(&name_element(&p.name));
        if let Some(sex) = p.sex {
            let code = match sex {
                Sex::Female => "F",
                Sex::Male => "M",
                Sex::Undetermined => "U",
            };
            let _ = write!(s, "<administrativeGenderCode code=\"{code}\" codeSystem=\"2.16.840.1.113883.5.1\"/>");
        }
        if let Some(b) = &p.birth_date {
            let _ = write!(s, "<birthTime value=\"{}\"/>", hl7_time(b));
        }
        s.push_str("</patient></patientRole></recordTarget>");
        w.line(&s);
    }
    let lab = h.laboratory.clone().unwrap_or_default();
    w.line(&format!(
        "<author><time value=\"{}\"/><assignedAuthor><id root=\"1.2.250.1.71.4.2.1\" extension=\"000000000\"/>{}</assignedAuthor></author>",
        h.effective_time.as_ref().map(hl7_time).unwrap_or_else(|| "20000101".into()),
        organization_element("representedOrganization", &lab)
    ));
    w.line(&format!(
        "<custodian><assignedCustodian>{}</assignedCustodian></custodian>",
        organization_element("representedCustodianOrganization", &lab)
    ));
    if let Some(v) = &h.validator {
        w.line(&professional_element("authenticator", v, None));
    }
    if let Some(p) = &h.prescriber {
        w.line(&professional_element("participant typeCode=\"REF\"", p, None));
    }
    if let Some(p) = &h.sampler {
        w.line(&professional_element(
            "participant typeCode=\"PRF\"",
            p,
            Some("<functionCode code=\"PRELV\" codeSystem=\"1.2.250.1.213.1.1.4.2.280\"/>"),
        ));
    }
    let chapters: Vec<&Code> = {
        let mut seen: Vec<&Code> = Vec::new();
        for o in report.observations.iter().filter_map(|o| o.chapter.as_ref()) {
            if !seen.contains(&o) {
                seen.push(o);
            }
        }
        seen
    };
    for (i, chapter) in chapters.iter().enumerate() {
        let mut s = String::from("<documentationOf><serviceEvent>");
        s.push_str(&code_element(&mut w, "code", chapter, &mut narrative, ""));
        if i == 0 {
            if let Some(status) = h.status {
                let code = match status {
                    ReportStatus::Completed => "completed",
                    ReportStatus::Active => "active",
                };
                let _ = write!(s, "<lab:statusCode code=\"{code}\"/>");
            }
            if let Some(start) = &h.service_start {
                let _ = write!(s, "<effectiveTime><low value=\"{}\"/></effectiveTime>", hl7_time(start));
            }
            let _ = write!(
                s,
                "<performer typeCode=\"PRF\"><templateId root=\"1.3.6.1.4.1.19376.1.3.3.1.7\"/><assignedEntity>{}</assignedEntity></performer>",
                organization_element("representedOrganization", &lab)
            );
        }
        s.push_str("</serviceEvent></documentationOf>");
        w.line(&s);
    }
    if let Some(parent) = &h.replaces {
        w.line(&format!(
            "<relatedDocument typeCode=\"RPLC\"><parentDocument>{}</parentDocument></relatedDocument>",
            id_element("id", parent)
        ));
    }
    if let Some(start) = &h.encounter_start {
        w.line(&format!(
            "<componentOf><encompassingEncounter><effectiveTime><low value=\"{}\"/></effectiveTime></encompassingEncounter></componentOf>",
            hl7_time(start)
        ));
    }
    w.line("<component><structuredBody>");
    for chapter in &chapters {
        write_chapter(&mut w, report, chapter);
    }
    for a in &report.attachments {
        write_attachment_section(&mut w, a);
    }
    w.line("</structuredBody></component>");
    w.line("</ClinicalDocument>");
    w.out
}

fn professional_element(tag: &str, p: &Professional, function: Option<&str>) -> String {
    let mut s = format!("<{tag}>");
    if let Some(f) = function {
        s.push_str(f);
    }
    if let Some(t) = &p.time {
        let _ = write!(s, "<time xsi:type=\"IVL_TS\"><high value=\"{}\"/></time>", hl7_time(t));
    }
    let entity = if tag.starts_with("participant") { "associatedEntity classCode=\"PROV\"" } else { "assignedEntity" };
    let _ = write!(s, "<{entity}>");
    if let Some(id) = &p.id {
        s.push_str(&id_element("id", id));
    }
    if let Some(n) = &p.name {
        let person = if tag.starts_with("participant") { "associatedPerson" } else { "assignedPerson" };
        let _ = write!(s, "<{person}>{}</{person}>", name_element(n));
    }
    if let Some(o) = &p.organization {
        let org = if tag.starts_with("participant") { "scopingOrganization" } else { "representedOrganization" };
        s.push_str(&organization_element(org, o));
    }
    let entity_close = entity.split_whitespace().next().unwrap_or(entity);
    let tag_close = tag.split_whitespace().next().unwrap_or(tag);
    let _ = write!(s, "</{entity_close}></{tag_close}>");
    s
}

fn write_chapter(w: &mut Writer, report: &Report, chapter: &Code) {
    let mut narrative: Vec<(String, String)> = Vec::new();
    let mut scratch = Vec::new();
    let chapter_code = code_element(w, "code", chapter, &mut scratch, "");
    // Results of this chapter that are not previous results, grouped in runs.
    let members: Vec<usize> =
        report.observations.iter().filter(|o| o.previous_of.is_none() && o.chapter.as_ref() == Some(chapter)).map(|o| o.index).collect();
    let mut sub_chapters: Vec<Option<&Code>> = Vec::new();
    for &i in &members {
        let sub = report.observations[i].sub_chapter.as_ref();
        if !sub_chapters.contains(&sub) {
            sub_chapters.push(sub);
        }
    }
    let mut entries = String::new();
    let mut sub_sections = String::new();
    for sub in sub_chapters {
        let in_sub: Vec<usize> = members.iter().copied().filter(|&i| report.observations[i].sub_chapter.as_ref() == sub).collect();
        let mut sub_narrative = Vec::new();
        let xml = write_entries(w, report, &in_sub, &mut sub_narrative);
        match sub {
            None => {
                entries.push_str(&xml);
                narrative.extend(sub_narrative);
            }
            Some(sub_code) => {
                let code = code_element(w, "code", sub_code, &mut scratch, "");
                let _ = write!(
                    sub_sections,
                    "<component><section><templateId root=\"1.3.6.1.4.1.19376.1.3.3.2.2\"/><templateId root=\"1.2.250.1.213.1.1.2.71\"/>{code}<text>{}</text>{xml}</section></component>",
                    narrative_table(&sub_narrative)
                );
            }
        }
    }
    w.line(&format!(
        "<component><section><templateId root=\"1.3.6.1.4.1.19376.1.3.3.2.1\"/><templateId root=\"1.2.250.1.213.1.1.2.70\"/>{chapter_code}<title>{}</title><text>{}</text>{entries}{sub_sections}</section></component>",
        escape(chapter.label().unwrap_or("Biologie")),
        narrative_table(&narrative)
    ));
}

fn narrative_table(items: &[(String, String)]) -> String {
    if items.is_empty() {
        return "<paragraph>-</paragraph>".into();
    }
    let mut s = String::from("<table><tbody>");
    for (anchor, text) in items {
        let _ = write!(s, "<tr><td><content ID=\"{anchor}\">{}</content></td></tr>", escape(text));
    }
    s.push_str("</tbody></table>");
    s
}

/// One entry per run of consecutive results sharing battery and isolate.
fn write_entries(w: &mut Writer, report: &Report, members: &[usize], narrative: &mut Vec<(String, String)>) -> String {
    let mut out = String::new();
    let mut start = 0;
    while start < members.len() {
        let key = group_key(&report.observations[members[start]]);
        let mut end = start + 1;
        while end < members.len() && group_key(&report.observations[members[end]]) == key {
            end += 1;
        }
        let run = &members[start..end];
        let first = &report.observations[run[0]];
        let mut results = String::new();
        let wrapper = if first.battery.is_some() || first.isolate.is_some() { "component" } else { "entryRelationship typeCode=\"COMP\"" };
        for &i in run {
            results.push_str(&observation_element(w, report, i, narrative, wrapper));
        }
        let mut scratch = Vec::new();
        let mut body = results;
        if let Some(battery) = &first.battery {
            let code = code_element(w, "code", battery, &mut scratch, "");
            body = format!(
                "<organizer classCode=\"BATTERY\" moodCode=\"EVN\"><templateId root=\"1.3.6.1.4.1.19376.1.3.1.4\"/>{code}<statusCode code=\"completed\"/>{body}</organizer>"
            );
            if first.isolate.is_some() {
                body = format!("<component>{body}</component>");
            }
        }
        if let Some(isolate) = &first.isolate {
            let organism = code_element(w, "code", &isolate.organism, &mut scratch, "");
            body = format!(
                "<organizer classCode=\"CLUSTER\" moodCode=\"EVN\"><templateId root=\"1.3.6.1.4.1.19376.1.3.1.5\"/><statusCode code=\"completed\"/><specimen typeCode=\"SPC\"><specimenRole classCode=\"SPEC\"><specimenPlayingEntity classCode=\"MIC\">{organism}</specimenPlayingEntity></specimenRole></specimen>{body}</organizer>"
            );
        }
        if first.battery.is_some() || first.isolate.is_some() {
            body = format!("<entryRelationship typeCode=\"COMP\">{body}</entryRelationship>");
        }
        let specimen = first.collection_time.filter(|_| first.collection_time_source == Some(CollectionTimeSource::SpecimenProcedure)).map(|t| {
            format!(
                "<entryRelationship typeCode=\"COMP\"><procedure classCode=\"PROC\" moodCode=\"EVN\"><templateId root=\"1.3.6.1.4.1.19376.1.3.1.2\"/><effectiveTime><high value=\"{}\"/></effectiveTime></procedure></entryRelationship>",
                hl7_time(&t)
            )
        });
        let _ = write!(
            out,
            "<entry typeCode=\"DRIV\"><templateId root=\"1.3.6.1.4.1.19376.1.3.1\"/><act classCode=\"ACT\" moodCode=\"EVN\"><statusCode code=\"completed\"/>{}{body}</act></entry>",
            specimen.unwrap_or_default()
        );
        start = end;
    }
    out
}

fn write_attachment_section(w: &mut Writer, a: &Attachment) {
    let (template, code) = match a.purpose {
        AttachmentPurpose::ReportCopy => ("1.2.250.1.213.1.1.2.243", "55108-5"),
        AttachmentPurpose::SecondIntention => ("1.2.250.1.213.1.1.2.60", "101792-0"),
        _ => ("1.2.250.1.213.1.1.2.243", "55108-5"),
    };
    let anchor = a.anchor.clone().unwrap_or_else(|| "doc-1".into());
    let b64 = base64::engine::general_purpose::STANDARD.encode(a.bytes().unwrap_or_default());
    w.line(&format!(
        "<component><section><templateId root=\"{template}\"/><code code=\"{code}\" codeSystem=\"2.16.840.1.113883.6.1\"/><text><renderMultiMedia referencedObject=\"{}\"/></text><entry><organizer classCode=\"CLUSTER\" moodCode=\"EVN\"><statusCode code=\"completed\"/><component><observationMedia classCode=\"OBS\" moodCode=\"EVN\" ID=\"{}\"><value mediaType=\"{}\" representation=\"B64\">{b64}</value></observationMedia></component></organizer></entry></section></component>",
        escape(&anchor),
        escape(&anchor),
        escape(&a.media_type)
    ));
}
