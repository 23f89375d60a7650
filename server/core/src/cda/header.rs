//! The CDA header: identifiers, versions, patient, laboratory, participants.

use super::model::*;
use super::time::CdaTime;
use crate::xml::{NodeId, Ns, Tree, collapse_whitespace};

pub(super) fn extract(tree: &Tree<'_>, doc: NodeId, warnings: &mut Vec<String>) -> Header {
    let service_event = tree.cda_path(doc, &["documentationOf", "serviceEvent"]);
    let mut header = Header {
        id: tree.cda_child(doc, "id").and_then(|n| instance_id(tree, n)),
        set_id: tree.cda_child(doc, "setId").and_then(|n| instance_id(tree, n)),
        version_number: tree.cda_child(doc, "versionNumber").and_then(|n| {
            let raw = tree.attr_nonempty(n, "value")?;
            let parsed = raw.parse::<u32>().ok();
            if parsed.is_none() {
                warnings.push(format!("versionNumber {raw:?} is not a number"));
            }
            parsed
        }),
        replaces: tree
            .cda_children(doc, "relatedDocument")
            .find(|&r| tree.attr(r, "typeCode") == Some("RPLC"))
            .and_then(|r| tree.cda_path(r, &["parentDocument", "id"]))
            .and_then(|n| instance_id(tree, n)),
        code: tree.cda_child(doc, "code").map(|n| code(tree, n)),
        title: tree.cda_child(doc, "title").map(|n| tree.text_content(n)).filter(|t| !t.is_empty()),
        effective_time: tree.cda_child(doc, "effectiveTime").and_then(|n| time_value(tree, n, warnings)),
        status: None,
        patient: tree.cda_path(doc, &["recordTarget", "patientRole"]).map(|n| patient(tree, n, warnings)),
        laboratory: None,
        prescriber: participant(tree, doc, "REF", None, warnings),
        sampler: participant(tree, doc, "PRF", Some("PRELV"), warnings),
        validator: tree
            .cda_child(doc, "authenticator")
            .or_else(|| tree.cda_child(doc, "legalAuthenticator"))
            .map(|n| professional(tree, n, warnings)),
        encounter_start: tree
            .cda_path(doc, &["componentOf", "encompassingEncounter", "effectiveTime"])
            .and_then(|t| interval_bound(tree, t, "low", warnings)),
        service_start: service_event
            .and_then(|s| tree.cda_child(s, "effectiveTime"))
            .and_then(|t| interval_bound(tree, t, "low", warnings)),
        chapters: Vec::new(),
    };

    for documentation in tree.cda_children(doc, "documentationOf") {
        let Some(event) = tree.cda_child(documentation, "serviceEvent") else { continue };
        if let Some(c) = tree.cda_child(event, "code") {
            let c = code(tree, c);
            if c.code.is_some() {
                header.chapters.push(c);
            }
        }
        if header.status.is_none() {
            header.status = tree.children(event).find(|&n| tree.ns(n) == Ns::Lab && tree.name(n) == "statusCode").and_then(|n| match tree
                .attr(n, "code")
                .map(str::trim)
            {
                Some("completed") => Some(ReportStatus::Completed),
                Some("active") => Some(ReportStatus::Active),
                other => {
                    warnings.push(format!("unknown report status {other:?}"));
                    None
                }
            });
        }
        if header.laboratory.is_none() {
            header.laboratory = tree
                .cda_children(event, "performer")
                .find_map(|p| tree.cda_path(p, &["assignedEntity", "representedOrganization"]))
                .map(|o| organization(tree, o));
        }
    }
    header
}

pub(crate) fn instance_id(tree: &Tree<'_>, node: NodeId) -> Option<InstanceId> {
    let root = tree.attr_nonempty(node, "root")?;
    Some(InstanceId { root: root.to_string(), extension: tree.attr_nonempty(node, "extension").map(str::to_string) })
}

/// A `code`-like element (CE/CD/CV): attributes, `originalText` (inline or by reference into the
/// narrative) and `translation`s.
pub(crate) fn code(tree: &Tree<'_>, node: NodeId) -> Code {
    Code {
        code: tree.attr_nonempty(node, "code").map(str::to_string),
        system: tree.attr_nonempty(node, "codeSystem").map(str::to_string),
        display: tree.attr_nonempty(node, "displayName").map(collapse_whitespace),
        original_text: tree.cda_child(node, "originalText").and_then(|t| referenced_text(tree, t)),
        translations: tree.cda_children(node, "translation").map(|t| code(tree, t)).collect(),
        null_flavor: tree.attr_nonempty(node, "nullFlavor").map(str::to_string),
    }
}

/// Text of an element that holds text inline or a `<reference value="#id"/>` into the narrative.
pub(crate) fn referenced_text(tree: &Tree<'_>, node: NodeId) -> Option<String> {
    if let Some(reference) = tree.cda_child(node, "reference")
        && let Some(target) = tree.attr_nonempty(reference, "value").and_then(|v| v.strip_prefix('#'))
        && let Some(anchor) = tree.by_id(target)
    {
        let text = tree.text_content(anchor);
        if !text.is_empty() {
            return Some(text);
        }
    }
    let inline = collapse_whitespace(&tree.own_text(node));
    (!inline.is_empty()).then_some(inline)
}

/// The `value` attribute of a TS element, parsed; a bad value becomes a warning.
pub(crate) fn time_value(tree: &Tree<'_>, node: NodeId, warnings: &mut Vec<String>) -> Option<CdaTime> {
    let raw = tree.attr_nonempty(node, "value")?;
    match CdaTime::parse_hl7(raw) {
        Ok(t) => Some(t),
        Err(e) => {
            warnings.push(e.to_string());
            None
        }
    }
}

/// `low` or `high` of an IVL_TS, or the element's own value when it is a point.
pub(crate) fn interval_bound(tree: &Tree<'_>, node: NodeId, bound: &str, warnings: &mut Vec<String>) -> Option<CdaTime> {
    match tree.cda_child(node, bound) {
        Some(b) => time_value(tree, b, warnings),
        None => time_value(tree, node, warnings),
    }
}

fn patient(tree: &Tree<'_>, role: NodeId, warnings: &mut Vec<String>) -> Patient {
    let person = tree.cda_child(role, "patient");
    Patient {
        ids: tree.cda_children(role, "id").filter_map(|n| instance_id(tree, n)).collect(),
        name: person.and_then(|p| tree.cda_child(p, "name")).map(|n| person_name(tree, n)).unwrap_or_default(),
        birth_date: person.and_then(|p| tree.cda_child(p, "birthTime")).and_then(|n| time_value(tree, n, warnings)),
        sex: person.and_then(|p| tree.cda_child(p, "administrativeGenderCode")).and_then(|n| match tree.attr(n, "code") {
            Some("F") => Some(Sex::Female),
            Some("M") => Some(Sex::Male),
            Some("U") => Some(Sex::Undetermined),
            _ => None,
        }),
    }
}

pub(crate) fn person_name(tree: &Tree<'_>, name: NodeId) -> PersonName {
    let mut out = PersonName::default();
    for part in tree.children(name) {
        if tree.ns(part) != Ns::Cda {
            continue;
        }
        let text = tree.text_content(part);
        if text.is_empty() {
            continue;
        }
        let qualifier = tree.attr(part, "qualifier");
        match tree.name(part) {
            "family" => match qualifier {
                Some("BR") => {
                    out.birth_family.get_or_insert(text);
                }
                _ => {
                    out.family.get_or_insert(text);
                }
            },
            // Several `given` elements: the full list of first names, then the used one(s).
            // Keep each distinct value once, in document order.
            "given" if !out.given.contains(&text) => {
                out.given.push(text);
            }
            "prefix" => {
                out.prefix.get_or_insert(text);
            }
            _ => {}
        }
    }
    if out.family.is_none() {
        out.family = out.birth_family.clone();
    }
    out
}

pub(crate) fn organization(tree: &Tree<'_>, org: NodeId) -> Organization {
    Organization {
        id: tree.cda_children(org, "id").find_map(|n| instance_id(tree, n)),
        name: tree.cda_child(org, "name").map(|n| tree.text_content(n)).filter(|n| !n.is_empty()),
    }
}

/// A professional from an `author`/`authenticator`/`participant`/`performer`-like element.
pub(crate) fn professional(tree: &Tree<'_>, node: NodeId, warnings: &mut Vec<String>) -> Professional {
    let entity = tree
        .cda_child(node, "assignedEntity")
        .or_else(|| tree.cda_child(node, "associatedEntity"))
        .or_else(|| tree.cda_child(node, "assignedAuthor"));
    let person = entity.and_then(|e| tree.cda_child(e, "assignedPerson").or_else(|| tree.cda_child(e, "associatedPerson")));
    let org = entity.and_then(|e| tree.cda_child(e, "representedOrganization").or_else(|| tree.cda_child(e, "scopingOrganization")));
    Professional {
        id: entity.and_then(|e| tree.cda_children(e, "id").find_map(|n| instance_id(tree, n))),
        name: person.and_then(|p| tree.cda_child(p, "name")).map(|n| person_name(tree, n)),
        organization: org.map(|o| organization(tree, o)),
        time: tree.cda_child(node, "time").and_then(|t| interval_bound(tree, t, "high", warnings)),
    }
}

fn participant(tree: &Tree<'_>, doc: NodeId, type_code: &str, function: Option<&str>, warnings: &mut Vec<String>) -> Option<Professional> {
    tree.cda_children(doc, "participant")
        .find(|&p| {
            tree.attr(p, "typeCode") == Some(type_code)
                && function.is_none_or(|f| tree.cda_child(p, "functionCode").and_then(|c| tree.attr(c, "code")) == Some(f))
        })
        .map(|p| professional(tree, p, warnings))
}
