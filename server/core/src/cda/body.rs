//! The body: sections with their narrative, every result at any depth, comments, attachments.

use std::rc::Rc;

use super::header::{code, interval_bound, organization, referenced_text, time_value};
use super::model::*;
use super::narrative::to_safe_html;
use super::time::CdaTime;
use crate::xml::{NodeId, Ns, Tree, collapse_whitespace};

const TEMPLATE_CHAPTER: &str = "1.3.6.1.4.1.19376.1.3.3.2.1";
const TEMPLATE_SUB_CHAPTER: &str = "1.3.6.1.4.1.19376.1.3.3.2.2";
const TEMPLATE_PDF_COPY: &str = "1.2.250.1.213.1.1.2.243";
const TEMPLATE_SECOND_INTENTION: &str = "1.2.250.1.213.1.1.2.60";
const TEMPLATE_COMMENT_SECTION: &str = "1.3.6.1.4.1.19376.1.4.1.2.16";
const TEMPLATE_SPECIMEN_COLLECTION: &str = "1.3.6.1.4.1.19376.1.3.1.2";
const COMMENT_CODE: &str = "48767-8";

/// Everything read from the body.
#[derive(Default)]
pub(super) struct Body {
    pub sections: Vec<Section>,
    pub observations: Vec<Observation>,
    pub comments: Vec<Comment>,
    pub attachments: Vec<Attachment>,
}

/// What surrounds a result: inherited from sections, entries and organizers. Shared (`Rc`) so
/// that descending into an entry or organizer copies pointers, not strings.
#[derive(Clone, Default)]
struct Context {
    chapter: Option<Rc<Code>>,
    sub_chapter: Option<Rc<Code>>,
    battery: Option<Rc<Code>>,
    isolate: Option<Rc<Isolate>>,
    performer: Option<Rc<Organization>>,
    specimen: Option<Rc<Code>>,
    specimen_time: Option<CdaTime>,
}

fn owned<T: Clone>(shared: &Option<Rc<T>>) -> Option<T> {
    shared.as_deref().cloned()
}

struct Extractor<'t, 'a> {
    tree: &'t Tree<'a>,
    header: &'t Header,
    warnings: &'t mut Vec<String>,
    body: Body,
}

pub(super) fn extract(tree: &Tree<'_>, doc: NodeId, header: &Header, warnings: &mut Vec<String>) -> Body {
    let mut ex = Extractor { tree, header, warnings, body: Body::default() };
    let Some(component) = tree.cda_child(doc, "component") else { return ex.body };
    if let Some(structured) = tree.cda_child(component, "structuredBody") {
        for section in tree.cda_children(structured, "component").filter_map(|c| tree.cda_child(c, "section")) {
            let section = ex.section(section, &Context::default(), 0);
            ex.body.sections.push(section);
        }
        ex.attachments(structured);
    }
    if let Some(non_xml) = tree.cda_child(component, "nonXMLBody")
        && let Some(text) = tree.cda_child(non_xml, "text")
    {
        ex.attachment(text, AttachmentPurpose::ReportCopy, None);
    }
    ex.body
}

impl Extractor<'_, '_> {
    fn templates(&self, node: NodeId) -> impl Iterator<Item = &str> {
        self.tree.cda_children(node, "templateId").filter_map(|t| self.tree.attr(t, "root"))
    }

    fn has_template(&self, node: NodeId, template: &str) -> bool {
        self.templates(node).any(|t| t == template)
    }

    fn section_kind(&self, section: NodeId) -> SectionKind {
        let templates: Vec<&str> = self.templates(section).collect();
        if templates.contains(&TEMPLATE_PDF_COPY) {
            SectionKind::PdfCopy
        } else if templates.contains(&TEMPLATE_SECOND_INTENTION) {
            SectionKind::SecondIntention
        } else if templates.contains(&TEMPLATE_COMMENT_SECTION) {
            SectionKind::Comment
        } else if templates.contains(&TEMPLATE_CHAPTER) || templates.contains(&TEMPLATE_SUB_CHAPTER) {
            SectionKind::Chapter
        } else {
            SectionKind::Other
        }
    }

    fn section(&mut self, node: NodeId, parent: &Context, depth: usize) -> Section {
        let tree = self.tree;
        let kind = self.section_kind(node);
        let section_code = tree.cda_child(node, "code").map(|c| code(tree, c));
        let mut ctx = parent.clone();
        if kind == SectionKind::Chapter {
            if depth == 0 {
                ctx.chapter = section_code.clone().map(Rc::new);
            } else {
                ctx.sub_chapter = section_code.clone().map(Rc::new);
            }
        }
        if kind == SectionKind::Chapter {
            for entry in tree.cda_children(node, "entry") {
                self.entry(entry, &ctx);
            }
        }
        let sub_sections = tree
            .cda_children(node, "component")
            .filter_map(|c| tree.cda_child(c, "section"))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|s| self.section(s, &ctx, depth + 1))
            .collect();
        Section {
            kind,
            code: section_code,
            title: tree.cda_child(node, "title").map(|t| tree.text_content(t)).filter(|t| !t.is_empty()),
            narrative_html: tree.cda_child(node, "text").map(|t| to_safe_html(tree, t)).unwrap_or_default(),
            sub_sections,
        }
    }

    fn entry(&mut self, entry: NodeId, ctx: &Context) {
        for statement in self.tree.children(entry) {
            self.statement(statement, ctx);
        }
    }

    /// The performer organisation an element names for itself (subcontracting laboratory).
    fn performer_override(&self, node: NodeId) -> Option<Organization> {
        self.tree
            .cda_children(node, "performer")
            .find_map(|p| self.tree.cda_path(p, &["assignedEntity", "representedOrganization"]))
            .map(|o| organization(self.tree, o))
            .filter(|o| o.id.is_some() || o.name.is_some())
    }

    /// Any clinical statement: act, organizer, observation, procedure.
    fn statement(&mut self, node: NodeId, ctx: &Context) {
        let tree = self.tree;
        if tree.ns(node) != Ns::Cda {
            return;
        }
        match tree.name(node) {
            "act" => {
                if self.is_comment(node) {
                    self.report_comment(node, ctx);
                    return;
                }
                let mut ctx = ctx.clone();
                if let Some(p) = self.performer_override(node) {
                    ctx.performer = Some(Rc::new(p));
                }
                self.specimen_context(node, &mut ctx);
                self.children_statements(node, &ctx);
            }
            "organizer" => {
                let mut ctx = ctx.clone();
                let organizer_code = tree.cda_child(node, "code").map(|c| code(tree, c));
                match tree.attr(node, "classCode") {
                    Some("CLUSTER") => {
                        let organism =
                            tree.cda_path(node, &["specimen", "specimenRole", "specimenPlayingEntity", "code"]).map(|c| code(tree, c));
                        if let Some(organism) = organism {
                            ctx.isolate = Some(Rc::new(Isolate { organism }));
                            ctx.battery = None;
                        }
                    }
                    _ => ctx.battery = organizer_code.filter(|c| c.code.is_some() || c.label().is_some()).map(Rc::new),
                }
                if let Some(p) = self.performer_override(node) {
                    ctx.performer = Some(Rc::new(p));
                }
                self.specimen_context(node, &mut ctx);
                self.children_statements(node, &ctx);
            }
            "observation" => self.observation(node, ctx, None),
            // Specimen procedures were read into the context by `specimen_context`.
            _ => {}
        }
    }

    /// Statements under `entryRelationship` and `component` of an act or organizer.
    fn children_statements(&mut self, node: NodeId, ctx: &Context) {
        let tree = self.tree;
        for rel in tree.children(node) {
            if !(tree.is_cda(rel, "entryRelationship") || tree.is_cda(rel, "component")) {
                continue;
            }
            for statement in tree.children(rel) {
                self.statement(statement, ctx);
            }
        }
    }

    /// The specimen collection procedure among an act's or organizer's parts: its time is the
    /// preferred collection time of every result in the same entry.
    fn specimen_context(&mut self, node: NodeId, ctx: &mut Context) {
        let tree = self.tree;
        for rel in tree.children(node) {
            if !(tree.is_cda(rel, "entryRelationship") || tree.is_cda(rel, "component")) {
                continue;
            }
            for procedure in tree.cda_children(rel, "procedure") {
                if !self.has_template(procedure, TEMPLATE_SPECIMEN_COLLECTION) {
                    continue;
                }
                if let Some(time) = tree.cda_child(procedure, "effectiveTime") {
                    if let Some(t) = interval_bound(tree, time, "high", self.warnings) {
                        ctx.specimen_time = Some(t);
                    } else if let Some(t) = interval_bound(tree, time, "low", self.warnings) {
                        ctx.specimen_time = Some(t);
                    }
                }
                let specimen = tree
                    .cda_children(procedure, "participant")
                    .find_map(|p| tree.cda_path(p, &["participantRole", "playingEntity", "code"]))
                    .map(|c| code(tree, c));
                if specimen.is_some() {
                    ctx.specimen = specimen.map(Rc::new);
                }
            }
        }
    }

    fn is_comment(&self, act: NodeId) -> bool {
        self.tree.cda_child(act, "code").and_then(|c| self.tree.attr(c, "code")) == Some(COMMENT_CODE)
    }

    fn comment_text(&self, act: NodeId) -> Option<String> {
        self.tree.cda_child(act, "text").and_then(|t| referenced_text(self.tree, t))
    }

    fn report_comment(&mut self, act: NodeId, ctx: &Context) {
        if let Some(text) = self.comment_text(act) {
            self.body.comments.push(Comment { chapter: owned(&ctx.chapter), battery: owned(&ctx.battery), text });
        }
    }

    fn observation(&mut self, node: NodeId, ctx: &Context, previous_of: Option<usize>) {
        let tree = self.tree;
        let index = self.body.observations.len();
        let mut ctx = ctx.clone();
        if let Some(p) = self.performer_override(node) {
            ctx.performer = Some(Rc::new(p));
        }
        let effective_time = tree.cda_child(node, "effectiveTime").and_then(|t| interval_bound(tree, t, "low", self.warnings));
        let status = match tree.cda_child(node, "statusCode").and_then(|s| tree.attr(s, "code")).map(str::trim) {
            Some("completed") | None => ResultStatus::Completed,
            Some("aborted") => ResultStatus::Aborted,
            Some(other) => ResultStatus::Other(other.to_string()),
        };
        // A previous result was collected on its own day: only its own time describes it.
        let (collection_time, collection_time_source) = if previous_of.is_some() {
            (effective_time, effective_time.map(|_| CollectionTimeSource::ObservationTime))
        } else {
            self.collection_time(&ctx, effective_time)
        };
        let performer_overridden = ctx.performer.is_some();
        let observation = Observation {
            index,
            previous_of,
            chapter: owned(&ctx.chapter),
            sub_chapter: owned(&ctx.sub_chapter),
            battery: owned(&ctx.battery),
            isolate: owned(&ctx.isolate),
            code: tree.cda_child(node, "code").map(|c| code(tree, c)).unwrap_or_default(),
            status,
            value: tree.cda_child(node, "value").map(|v| self.value(v)),
            interpretation: tree.cda_children(node, "interpretationCode").map(|c| code(tree, c)).collect(),
            // An empty `methodCode` (no code, no text) says nothing: leave it out.
            method: tree.cda_child(node, "methodCode").map(|c| code(tree, c)).filter(|c| *c != Code::default()),
            reference_ranges: tree.cda_children(node, "referenceRange").filter_map(|r| self.reference_range(r)).collect(),
            effective_time,
            collection_time,
            collection_time_source,
            performer: owned(&ctx.performer).or_else(|| self.header.laboratory.clone()),
            performer_overridden,
            specimen: owned(&ctx.specimen),
            comments: Vec::new(),
        };
        self.body.observations.push(observation);

        // Parts of the result: comments, previous results, component results.
        for rel in tree.cda_children(node, "entryRelationship") {
            let type_code = tree.attr(rel, "typeCode");
            for part in tree.children(rel) {
                match (type_code, tree.name(part)) {
                    (Some("REFR"), "observation") if tree.ns(part) == Ns::Cda => {
                        // A previous result keeps the context, not the current result's performer
                        // override unless it names its own.
                        self.observation(part, &ctx, Some(index));
                    }
                    (_, "act") if tree.ns(part) == Ns::Cda && self.is_comment(part) => {
                        if let Some(text) = self.comment_text(part) {
                            self.body.observations[index].comments.push(text);
                        }
                    }
                    (_, "observation") if tree.ns(part) == Ns::Cda => self.observation(part, &ctx, previous_of),
                    _ => {}
                }
            }
        }
    }

    /// Collection time in the order of preference of the CR-BIO notes, and which source gave it.
    fn collection_time(&self, ctx: &Context, observation_time: Option<CdaTime>) -> (Option<CdaTime>, Option<CollectionTimeSource>) {
        let candidates = [
            (ctx.specimen_time, CollectionTimeSource::SpecimenProcedure),
            (self.header.sampler.as_ref().and_then(|s| s.time), CollectionTimeSource::Sampler),
            (self.header.encounter_start, CollectionTimeSource::Encounter),
            (observation_time, CollectionTimeSource::ObservationTime),
            (self.header.service_start, CollectionTimeSource::ServiceEvent),
        ];
        candidates.into_iter().find_map(|(t, source)| t.map(|t| (Some(t), Some(source)))).unwrap_or((None, None))
    }

    fn quantity(&mut self, node: NodeId) -> Option<Quantity> {
        let raw = self.tree.attr_nonempty(node, "value")?;
        match Decimal::parse(raw) {
            Some(value) => Some(Quantity { value, unit: self.tree.attr_nonempty(node, "unit").map(str::to_string) }),
            None => {
                self.warnings.push(format!("number {:?} is not a valid decimal", truncate(raw, 40)));
                None
            }
        }
    }

    fn value(&mut self, node: NodeId) -> Value {
        let tree = self.tree;
        if let Some(flavor) = tree.attr_nonempty(node, "nullFlavor") {
            return Value::Null { flavor: flavor.to_string() };
        }
        let xsi_type = tree.xsi_type(node).map(|(_, t)| t.to_string());
        let unreadable = |xsi_type: &str, reason: &str, raw: String| Value::Unreadable {
            xsi_type: xsi_type.to_string(),
            reason: reason.to_string(),
            raw: truncate(&raw, 200),
        };
        let raw_attr = |name: &str| tree.attr(node, name).unwrap_or_default().to_string();
        match xsi_type.as_deref() {
            Some("PQ") | None if tree.attr(node, "value").is_some() => match self.quantity(node) {
                Some(q) => Value::Quantity(q),
                None => unreadable(xsi_type.as_deref().unwrap_or("PQ"), "the number is not a valid decimal", raw_attr("value")),
            },
            Some("IVL_PQ") => {
                let bound = |this: &mut Self, name: &str| -> (Option<Quantity>, bool, bool) {
                    match tree.cda_child(node, name) {
                        None => (None, false, true),
                        Some(b) => {
                            let inclusive = tree.attr(b, "inclusive").map(str::trim) != Some("false");
                            let present = tree.attr(b, "value").is_some();
                            (this.quantity(b), present, inclusive)
                        }
                    }
                };
                let (low, low_present, low_inclusive) = bound(self, "low");
                let (high, high_present, high_inclusive) = bound(self, "high");
                if (low_present && low.is_none()) || (high_present && high.is_none()) {
                    return unreadable("IVL_PQ", "a bound is not a valid decimal", String::new());
                }
                match (low, high) {
                    (None, Some(high)) => Value::Censored {
                        comparator: if high_inclusive { Comparator::LessOrEqual } else { Comparator::Less },
                        quantity: high,
                    },
                    (Some(low), None) => Value::Censored {
                        comparator: if low_inclusive { Comparator::GreaterOrEqual } else { Comparator::Greater },
                        quantity: low,
                    },
                    (Some(low), Some(high)) => Value::Interval { low: Some(low), high: Some(high) },
                    (None, None) => unreadable("IVL_PQ", "an interval without bounds", String::new()),
                }
            }
            Some("REAL") => match tree.attr_nonempty(node, "value").and_then(Decimal::parse) {
                Some(value) => Value::Real { value },
                None => unreadable("REAL", "the number is not a valid decimal", raw_attr("value")),
            },
            Some("INT") => match tree.attr_nonempty(node, "value").and_then(|v| v.parse::<i64>().ok()) {
                Some(value) => Value::Integer { value },
                None => unreadable("INT", "not an integer", raw_attr("value")),
            },
            Some("CD" | "CE" | "CV" | "CO" | "CS") => Value::Coded(code(tree, node)),
            Some("ST" | "ED" | "SC") => {
                let text = referenced_text(tree, node).unwrap_or_else(|| collapse_whitespace(&tree.own_text(node)));
                Value::Text { text }
            }
            Some("BL") => Value::Text { text: raw_attr("value") },
            Some("TS") => match time_value(tree, node, self.warnings) {
                Some(time) => Value::Time { time },
                None => unreadable("TS", "not a valid timestamp", raw_attr("value")),
            },
            Some(t) if t.starts_with("RTO") => {
                let part = |this: &mut Self, name: &str| tree.cda_child(node, name).and_then(|p| this.quantity(p));
                match (part(self, "numerator"), part(self, "denominator")) {
                    (Some(numerator), Some(denominator)) => Value::Ratio { numerator, denominator },
                    _ => unreadable(t, "a ratio without a valid numerator and denominator", String::new()),
                }
            }
            Some(other) => unreadable(other, "this value type is not supported", collapse_whitespace(&tree.own_text(node))),
            None => unreadable("", "the value has no type", collapse_whitespace(&tree.own_text(node))),
        }
    }

    fn reference_range(&mut self, range: NodeId) -> Option<ReferenceRange> {
        let tree = self.tree;
        let observation_range = tree.cda_child(range, "observationRange")?;
        let mut out = ReferenceRange::default();
        if let Some(value) = tree.cda_child(observation_range, "value") {
            out.low = tree.cda_child(value, "low").and_then(|l| self.quantity(l));
            out.high = tree.cda_child(value, "high").and_then(|h| self.quantity(h));
            if out.low.is_none() && out.high.is_none() {
                let text = referenced_text(tree, value).filter(|t| !t.is_empty());
                out.text = text;
            }
        }
        if out.text.is_none() {
            out.text = tree.cda_child(observation_range, "text").and_then(|t| referenced_text(tree, t));
        }
        out.precondition = tree
            .children(observation_range)
            .chain(tree.children(range))
            .find(|&n| tree.name(n) == "precondition")
            .map(|p| tree.text_content(p))
            .filter(|t| !t.is_empty());
        (out.low.is_some() || out.high.is_some() || out.text.is_some()).then_some(out)
    }

    /// Every `observationMedia` in the body, decoded.
    fn attachments(&mut self, structured: NodeId) {
        let tree = self.tree;
        let media: Vec<NodeId> = tree.descendants(structured).filter(|&n| tree.is_cda(n, "observationMedia")).collect();
        for node in media {
            let purpose = self.attachment_purpose(node);
            let anchor = tree.attr_nonempty(node, "ID").map(str::to_string);
            if let Some(value) = tree.cda_child(node, "value") {
                self.attachment(value, purpose, anchor);
            }
        }
    }

    fn attachment_purpose(&self, node: NodeId) -> AttachmentPurpose {
        let mut current = self.tree.parent(node);
        while let Some(n) = current {
            if self.tree.is_cda(n, "section") {
                return match self.section_kind(n) {
                    SectionKind::PdfCopy => AttachmentPurpose::ReportCopy,
                    SectionKind::SecondIntention => AttachmentPurpose::SecondIntention,
                    SectionKind::Chapter => AttachmentPurpose::Illustration,
                    _ => AttachmentPurpose::Other,
                };
            }
            current = self.tree.parent(n);
        }
        AttachmentPurpose::Other
    }

    fn attachment(&mut self, value: NodeId, purpose: AttachmentPurpose, anchor: Option<String>) {
        let tree = self.tree;
        let media_type = tree.attr_nonempty(value, "mediaType").unwrap_or("application/octet-stream").to_string();
        let text = tree.own_text(value);
        let attachment = if tree.attr(value, "representation") == Some("B64") {
            Attachment::from_base64(purpose, media_type, anchor, &text)
        } else {
            Attachment::from_bytes(purpose, media_type, anchor, text.as_bytes().to_vec())
        };
        if attachment.size_bytes == 0 {
            self.warnings.push(format!("attachment {} is empty", attachment.media_type));
            return;
        }
        self.body.attachments.push(attachment);
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
