//! A small, read-only XML tree over borrowed input, built from quick-xml events (text runs and
//! element tags are cut from the input beside quick-xml's reader, which would validate their
//! UTF-8 a second time: see `Tree::parse`).
//!
//! Why a tree and not a streaming extractor: a CDA observation is read from many places at once
//! (its `originalText/reference` points into the section narrative, which may come before or after
//! the entry; the collection time may come from a sibling procedure or from the header). A compact
//! arena of nodes that borrow their names and text from the input keeps extraction simple and still
//! costs little more than the event pass itself (see `docs/benchmarks.md`).
//!
//! Safety rules enforced here, not in callers:
//! - no DOCTYPE at all (CDA never has one; it is how entity bombs and external entities arrive);
//! - only the predefined entities and character references are expanded;
//! - size, depth and node-count caps ([`Limits`]);
//! - UTF-8 or ISO-8859-1 / windows-1252 input only, checked against the declaration.

use std::borrow::Cow;
use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event;

/// Namespaces the CDA parser cares about; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    /// `urn:hl7-org:v3`
    Cda,
    /// `http://www.w3.org/2001/XMLSchema-instance`
    Xsi,
    /// XD-LAB extension `urn:oid:1.3.6.1.4.1.19376.1.3.2`
    Lab,
    /// `http://www.w3.org/1999/XSL/Transform` (the auto-présentable wrapper)
    Xsl,
    /// Any other namespace.
    Other,
    /// No namespace (unprefixed attributes, elements with no default namespace).
    None,
}

impl Ns {
    fn classify_uri(uri: &str) -> Ns {
        match uri.trim() {
            "urn:hl7-org:v3" => Ns::Cda,
            "http://www.w3.org/2001/XMLSchema-instance" => Ns::Xsi,
            "urn:oid:1.3.6.1.4.1.19376.1.3.2" => Ns::Lab,
            "http://www.w3.org/1999/XSL/Transform" => Ns::Xsl,
            // `xmlns=""` undeclares the default namespace.
            "" => Ns::None,
            _ => Ns::Other,
        }
    }
}

/// The namespace a prefix is bound to where it is used ("" is the default namespace, which is no
/// namespace when undeclared). An undeclared prefix resolves to `Other`, so that nothing it names
/// is mistaken for CDA.
fn resolve_prefix(bindings: &[(&str, Ns, usize)], prefix: &str) -> Ns {
    // Prefixes are a few bytes: compare length and first byte before the full comparison.
    let first = prefix.as_bytes().first();
    let same = |p: &str| p.len() == prefix.len() && p.as_bytes().first() == first && p == prefix;
    match bindings.iter().rev().find(|(p, _, _)| same(p)) {
        Some((_, ns, _)) => *ns,
        None if prefix.is_empty() => Ns::None,
        None => Ns::Other,
    }
}

fn pop_bindings(bindings: &mut Vec<(&str, Ns, usize)>, depth: usize) {
    while bindings.last().is_some_and(|(_, _, d)| *d >= depth) {
        bindings.pop();
    }
}

/// Caps that keep hostile input from exhausting memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted document, in bytes. Real CR-BIO documents with an embedded PDF copy and
    /// images stay under 10 MB; the default leaves room for a long PDF.
    pub max_bytes: usize,
    /// Deepest element nesting. CR-BIO nests about 20 levels deep.
    pub max_depth: usize,
    /// Most nodes (elements and text runs) in one document.
    pub max_nodes: usize,
    /// Most attributes on one element.
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 64 * 1024 * 1024, max_depth: 256, max_nodes: 4_000_000, max_attributes: 128 }
    }
}

/// What went wrong while reading the XML itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum XmlErrorKind {
    #[error("the document is empty")]
    Empty,
    #[error("the document is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("elements nest deeper than the limit of {limit}")]
    TooDeep { limit: usize },
    #[error("the document has more than {limit} nodes")]
    TooManyNodes { limit: usize },
    #[error("an element has more than {limit} attributes")]
    TooManyAttributes { limit: usize },
    #[error("a DOCTYPE declaration is not allowed (entity declarations are refused)")]
    DoctypeRefused,
    #[error("undefined entity reference &{0};")]
    UndefinedEntity(String),
    #[error("the encoding {0:?} is not supported (UTF-8, ISO-8859-1 or windows-1252 only)")]
    UnsupportedEncoding(String),
    #[error("the bytes are not valid UTF-8")]
    InvalidUtf8,
    #[error("unclosed element <{0}> at the end of the document")]
    Truncated(String),
    #[error("no root element")]
    NoRoot,
    #[error("content after the root element")]
    TrailingContent,
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// An XML error with where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{kind} (line {line}, column {column}, byte {offset})")]
pub struct XmlError {
    pub kind: XmlErrorKind,
    /// Byte offset in the (decoded) document.
    pub offset: u64,
    pub line: u32,
    pub column: u32,
}

impl XmlError {
    fn at(kind: XmlErrorKind, text: &str, offset: u64) -> Self {
        let offset_usize = (offset as usize).min(text.len());
        let mut cut = offset_usize;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let before = &text[..cut];
        let line = before.bytes().filter(|&b| b == b'\n').count() as u32 + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
        XmlError { kind, offset, line, column }
    }

    fn without_position(kind: XmlErrorKind) -> Self {
        XmlError { kind, offset: 0, line: 1, column: 1 }
    }
}

pub(crate) type NodeId = u32;
const NONE: NodeId = u32::MAX;

#[derive(Debug)]
pub(crate) struct Attr<'a> {
    pub ns: Ns,
    pub name: &'a str,
    pub value: Cow<'a, str>,
    /// For `xsi:type`-like values `prefix:Name`: the namespace of the prefix, resolved where the
    /// attribute stands (the auto-présentable form writes `xsi:type="c:PQ"`).
    pub value_ns: Ns,
}

#[derive(Debug)]
enum Kind<'a> {
    Element { ns: Ns, name: &'a str, qname: &'a str, attrs_start: u32, attrs_end: u32 },
    Text(Cow<'a, str>),
}

#[derive(Debug)]
struct Node<'a> {
    kind: Kind<'a>,
    parent: NodeId,
    first_child: NodeId,
    last_child: NodeId,
    next_sibling: NodeId,
}

/// The parsed tree. Node 0 is the root element.
#[derive(Debug)]
pub(crate) struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    attrs: Vec<Attr<'a>>,
    /// Elements by their `ID` attribute (narrative anchors that results point to).
    ids: HashMap<&'a str, NodeId>,
    /// Processing instructions before the root (`xml-stylesheet` ...).
    pub processing_instructions: Vec<(&'a str, &'a str)>,
}

/// Turns raw bytes into text according to the BOM and the XML declaration.
pub(crate) fn decode<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Cow<'a, str>, XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError::without_position(XmlErrorKind::TooLarge { size: bytes.len(), limit: limits.max_bytes }));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"\xFF\xFE") {
        return Err(XmlError::without_position(XmlErrorKind::UnsupportedEncoding("UTF-16".into())));
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(XmlError::without_position(XmlErrorKind::Empty));
    }
    match declared_encoding(bytes).as_deref() {
        None | Some("utf-8") | Some("utf8") | Some("us-ascii") | Some("ascii") => match simdutf8::basic::from_utf8(bytes) {
            Ok(text) => Ok(Cow::Borrowed(text)),
            // The fast check says only "invalid"; std says where.
            Err(_) => {
                let e = std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to());
                let e = Utf8Position(e);
                let valid = &bytes[..e.0];
                let text = std::str::from_utf8(valid).unwrap_or_default();
                Err(XmlError::at(XmlErrorKind::InvalidUtf8, text, e.0 as u64))
            }
        },
        Some("iso-8859-1") | Some("iso8859-1") | Some("latin1") | Some("latin-1") | Some("iso-8859-15") => {
            Ok(Cow::Owned(bytes.iter().map(|&b| b as char).collect()))
        }
        Some("windows-1252") | Some("cp1252") => Ok(Cow::Owned(bytes.iter().map(|&b| windows_1252(b)).collect())),
        Some(other) => Err(XmlError::without_position(XmlErrorKind::UnsupportedEncoding(other.to_string()))),
    }
}

struct Utf8Position(usize);

/// The `encoding` pseudo-attribute of the XML declaration, lower-cased.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..bytes.len().min(200))?;
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_ascii_lowercase())
}

fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•',
        '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
    ];
    if (0x80..0xA0).contains(&b) { HIGH[(b - 0x80) as usize] } else { b as char }
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

/// Appends a text piece to the current text run of `parent`, merging adjacent runs.
struct TextRun<'a> {
    text: Option<Cow<'a, str>>,
    offset: u32,
}

impl<'a> Tree<'a> {
    pub(crate) fn parse(text: &'a str, limits: &Limits) -> Result<Tree<'a>, XmlError> {
        if text.len() > limits.max_bytes {
            return Err(XmlError::without_position(XmlErrorKind::TooLarge { size: text.len(), limit: limits.max_bytes }));
        }
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.trim_text(false);
        // End names are checked below against our own stack (quick-xml's check copies every
        // start name into a buffer of its own).
        config.check_end_names = false;
        config.expand_empty_elements = false;

        // Sized from the number of `<` (a fast count): each element is one or two of them, and
        // about as many text runs and attributes follow; no regrowing while the tree is built.
        let markup = memchr::memchr_iter(b'<', text.as_bytes()).count().min(limits.max_nodes).min(1 << 22);
        let mut tree = Tree {
            nodes: Vec::with_capacity(markup),
            attrs: Vec::with_capacity(markup),
            ids: HashMap::new(),
            processing_instructions: Vec::new(),
        };
        let mut stack: Vec<NodeId> = Vec::with_capacity(64);
        let mut run = TextRun { text: None, offset: 0 };
        // Whitespace-only text matters only in the narrative (mixed content); elsewhere it is
        // indentation. Depth at which we entered a CDA `text` element, if any.
        let mut narrative_depth: Option<usize> = None;
        let mut root_closed = false;
        // In-scope namespace declarations: (prefix, namespace, depth of the declaring element).
        let mut bindings: Vec<(&'a str, Ns, usize)> = Vec::with_capacity(8);
        let mut prefixes: Vec<&'a str> = Vec::with_capacity(16);

        // Text and element tags are read here rather than by quick-xml's reader, which
        // validates the UTF-8 of every slice again (a quarter of the whole parse on the corpus)
        // and copies every start tag's name: `text` is a `&str`, valid once and for all, and a
        // slice cut at `<`, `&` or `>` (ASCII) always ends on a character boundary. The reader is
        // moved past what was read here, so `skipped` counts the bytes its own position no
        // longer includes. Everything else (references, comments, CDATA, processing
        // instructions, DOCTYPE, and any tag that does not close) is still quick-xml's, errors
        // included; attributes are parsed by quick-xml in both cases.
        let mut skipped: u64 = 0;
        let mut between_markup = false;
        loop {
            if between_markup {
                let rest: &[u8] = reader.get_ref();
                if rest.first().is_some_and(|&b| b != b'<' && b != b'&') {
                    let len = memchr::memchr2(b'<', b'&', rest).unwrap_or(rest.len());
                    let offset = text.len() - rest.len();
                    *reader.get_mut() = &rest[len..];
                    skipped += len as u64;
                    tree.text(&text[offset..offset + len], offset as u64, &stack, root_closed, narrative_depth.is_some(), &mut run, text)?;
                }
            }
            let event_offset = reader.buffer_position() + skipped;
            let tag = if between_markup { read_tag(&mut reader, text, &mut skipped) } else { None };
            let event = match tag.map_or_else(|| reader.read_event(), Ok) {
                Ok(event) => event,
                Err(e) => {
                    let kind = match &e {
                        quick_xml::Error::IllFormed(quick_xml::errors::IllFormedError::MissingEndTag(name)) => {
                            XmlErrorKind::Truncated(name.clone())
                        }
                        _ => XmlErrorKind::Malformed(e.to_string()),
                    };
                    return Err(XmlError::at(kind, text, reader.error_position() + skipped));
                }
            };
            // After anything but text, quick-xml is between markup (its `InsideText` state).
            between_markup = !matches!(event, Event::Text(_));
            let is_text = matches!(event, Event::Text(_) | Event::CData(_) | Event::GeneralRef(_));
            if !is_text {
                tree.flush_text(&mut run, &stack, narrative_depth.is_some(), limits, text)?;
            }
            match event {
                Event::Start(start) | Event::Empty(start) if root_closed => {
                    let _ = start;
                    return Err(XmlError::at(XmlErrorKind::TrailingContent, text, event_offset));
                }
                Event::Start(ref start) | Event::Empty(ref start) => {
                    let is_empty = matches!(event, Event::Empty(_));
                    if stack.len() >= limits.max_depth {
                        return Err(XmlError::at(XmlErrorKind::TooDeep { limit: limits.max_depth }, text, event_offset));
                    }
                    // Namespaces are resolved here rather than by quick-xml's NsReader, which
                    // parses every element's attributes a second time to find declarations.
                    let depth = stack.len();
                    let attrs_start = tree.attrs.len() as u32;
                    prefixes.clear();
                    for attr in start.attributes().with_checks(false) {
                        let attr = attr.map_err(|e| XmlError::at(XmlErrorKind::Malformed(e.to_string()), text, event_offset))?;
                        let key = borrow_from(text, attr.key.0);
                        // Most values need no normalisation (no reference, no tab or line end):
                        // they are borrowed as they stand, the rest go through quick-xml.
                        let value = match &attr.value {
                            Cow::Borrowed(raw) if !raw.bytes().any(|b| matches!(b, b'&' | b'\n' | b'\t' | b'\r')) => {
                                rebind(text, Cow::Borrowed(raw))
                            }
                            _ => rebind(
                                text,
                                attr.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                    .map_err(|e| XmlError::at(XmlErrorKind::Malformed(e.to_string()), text, event_offset))?,
                            ),
                        };
                        if key == "xmlns" {
                            bindings.push(("", Ns::classify_uri(&value), depth));
                            continue;
                        }
                        if let Some(prefix) = key.strip_prefix("xmlns:") {
                            bindings.push((prefix, Ns::classify_uri(&value), depth));
                            continue;
                        }
                        let (prefix, local) = split_prefix(key);
                        prefixes.push(prefix);
                        tree.attrs.push(Attr { ns: Ns::None, name: local, value, value_ns: Ns::None });
                        if prefixes.len() > limits.max_attributes {
                            return Err(XmlError::at(XmlErrorKind::TooManyAttributes { limit: limits.max_attributes }, text, event_offset));
                        }
                    }
                    let qname = borrow_from(text, start.name().0);
                    let (prefix, name) = split_prefix(qname);
                    let ns = resolve_prefix(&bindings, prefix);
                    for (attr, prefix) in tree.attrs[attrs_start as usize..].iter_mut().zip(prefixes.iter()) {
                        if !prefix.is_empty() {
                            attr.ns = resolve_prefix(&bindings, prefix);
                        }
                        // Only `xsi:type` values are qualified names whose prefix matters.
                        if attr.ns == Ns::Xsi && attr.name == "type" {
                            let value_prefix = attr.value.split_once(':').map_or("", |(p, _)| p);
                            attr.value_ns = resolve_prefix(&bindings, value_prefix);
                        }
                    }
                    let attrs_end = tree.attrs.len() as u32;
                    let id = tree.push_node(
                        Kind::Element { ns, name, qname, attrs_start, attrs_end },
                        stack.last().copied().unwrap_or(NONE),
                        event_offset,
                        limits,
                        text,
                    )?;
                    if let Some(anchor) =
                        tree.attrs[attrs_start as usize..attrs_end as usize].iter().find(|a| a.name == "ID" && a.ns == Ns::None)
                        && let Cow::Borrowed(anchor) = anchor.value
                    {
                        tree.ids.entry(anchor).or_insert(id);
                    }
                    if is_empty {
                        pop_bindings(&mut bindings, depth);
                        if stack.is_empty() {
                            root_closed = true;
                        }
                    } else {
                        if ns == Ns::Cda && name == "text" && narrative_depth.is_none() {
                            narrative_depth = Some(stack.len());
                        }
                        stack.push(id);
                    }
                }
                Event::End(ref end) => {
                    let closing = end.name().0;
                    match stack.last() {
                        Some(&open) if tree.qname(open) == closing => {}
                        Some(&open) => {
                            let kind = XmlErrorKind::Malformed(format!(
                                "expected </{}>, found </{}>",
                                tree.qname(open),
                                closing.chars().take(64).collect::<String>()
                            ));
                            return Err(XmlError::at(kind, text, event_offset));
                        }
                        None => {
                            let kind = XmlErrorKind::Malformed(format!("unexpected </{}>", closing.chars().take(64).collect::<String>()));
                            return Err(XmlError::at(kind, text, event_offset));
                        }
                    }
                    stack.pop();
                    pop_bindings(&mut bindings, stack.len());
                    if narrative_depth == Some(stack.len()) {
                        narrative_depth = None;
                    }
                    if stack.is_empty() {
                        root_closed = true;
                    }
                }
                // Text is kept raw, line ends included: every reader of text collapses
                // whitespace (or, for base64, ignores it), so XML's end-of-line normalisation
                // would only copy megabytes for nothing.
                Event::Text(t) => {
                    let raw = rebind(text, t.into_inner());
                    match raw {
                        Cow::Borrowed(raw) => {
                            tree.text(raw, event_offset, &stack, root_closed, narrative_depth.is_some(), &mut run, text)?;
                        }
                        // quick-xml borrows text from the input; kept for completeness.
                        Cow::Owned(raw) => run.push(Cow::Owned(raw), event_offset),
                    }
                }
                Event::CData(c) => {
                    if stack.is_empty() {
                        return Err(XmlError::at(XmlErrorKind::Malformed("CDATA outside the root".into()), text, event_offset));
                    }
                    run.push(rebind(text, c.into_inner()), event_offset);
                }
                Event::GeneralRef(r) => {
                    let ch = if r.is_char_ref() {
                        r.resolve_char_ref().map_err(|e| XmlError::at(XmlErrorKind::Malformed(e.to_string()), text, event_offset))?
                    } else {
                        predefined_entity(&r.xml10_content())
                    };
                    match ch {
                        Some(ch) if stack.is_empty() => {
                            let _ = ch;
                            return Err(XmlError::at(XmlErrorKind::NoRoot, text, event_offset));
                        }
                        Some(ch) => run.push(Cow::Owned(ch.to_string()), event_offset),
                        None => {
                            return Err(XmlError::at(XmlErrorKind::UndefinedEntity(r.xml10_content().into_owned()), text, event_offset));
                        }
                    }
                }
                Event::DocType(_) => return Err(XmlError::at(XmlErrorKind::DoctypeRefused, text, event_offset)),
                Event::PI(pi) => {
                    if stack.is_empty() && !root_closed {
                        let target = borrow_from(text, pi.target());
                        let content = borrow_from(text, pi.content());
                        tree.processing_instructions.push((target, content.trim()));
                    }
                }
                Event::Decl(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(&open) = stack.last() {
            let name = tree.name(open).to_string();
            return Err(XmlError::at(XmlErrorKind::Truncated(name), text, text.len() as u64));
        }
        if tree.nodes.is_empty() {
            return Err(XmlError::at(XmlErrorKind::NoRoot, text, text.len() as u64));
        }
        Ok(tree)
    }

    /// A run of character data (no markup, no reference) at `offset`.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        raw: &'a str,
        offset: u64,
        stack: &[NodeId],
        root_closed: bool,
        in_narrative: bool,
        run: &mut TextRun<'a>,
        text: &str,
    ) -> Result<(), XmlError> {
        let blank = raw.bytes().all(|b| b.is_ascii_whitespace());
        if stack.is_empty() {
            if blank {
                return Ok(());
            }
            let kind = if root_closed { XmlErrorKind::TrailingContent } else { XmlErrorKind::NoRoot };
            return Err(XmlError::at(kind, text, offset));
        }
        // Indentation between elements matters only in the narrative's mixed content.
        if blank && !in_narrative && run.text.is_none() {
            return Ok(());
        }
        run.push(Cow::Borrowed(raw), offset);
        Ok(())
    }

    fn flush_text(
        &mut self,
        run: &mut TextRun<'a>,
        stack: &[NodeId],
        keep_whitespace: bool,
        limits: &Limits,
        text: &str,
    ) -> Result<(), XmlError> {
        if let Some(piece) = run.text.take()
            && (keep_whitespace || !piece.trim().is_empty())
        {
            let parent = stack.last().copied().unwrap_or(NONE);
            self.push_node(Kind::Text(piece), parent, run.offset as u64, limits, text)?;
        }
        Ok(())
    }

    fn push_node(&mut self, kind: Kind<'a>, parent: NodeId, offset: u64, limits: &Limits, text: &str) -> Result<NodeId, XmlError> {
        if self.nodes.len() >= limits.max_nodes {
            return Err(XmlError::at(XmlErrorKind::TooManyNodes { limit: limits.max_nodes }, text, offset));
        }
        let id = self.nodes.len() as NodeId;
        self.nodes.push(Node { kind, parent, first_child: NONE, last_child: NONE, next_sibling: NONE });
        if parent != NONE {
            let p = &mut self.nodes[parent as usize];
            if p.first_child == NONE {
                p.first_child = id;
            } else {
                let last = p.last_child;
                p.last_child = id;
                self.nodes[last as usize].next_sibling = id;
                return Ok(id);
            }
            p.last_child = id;
        }
        Ok(id)
    }

    pub(crate) fn root(&self) -> NodeId {
        0
    }

    /// Name of an element as written, prefix included ("" for text).
    fn qname(&self, id: NodeId) -> &'a str {
        match self.nodes[id as usize].kind {
            Kind::Element { qname, .. } => qname,
            Kind::Text(_) => "",
        }
    }

    /// Local name of an element ("" for text).
    pub(crate) fn name(&self, id: NodeId) -> &'a str {
        match self.nodes[id as usize].kind {
            Kind::Element { name, .. } => name,
            Kind::Text(_) => "",
        }
    }

    pub(crate) fn ns(&self, id: NodeId) -> Ns {
        match self.nodes[id as usize].kind {
            Kind::Element { ns, .. } => ns,
            Kind::Text(_) => Ns::None,
        }
    }

    pub(crate) fn parent(&self, id: NodeId) -> Option<NodeId> {
        let p = self.nodes[id as usize].parent;
        (p != NONE).then_some(p)
    }

    pub(crate) fn attrs(&self, id: NodeId) -> &[Attr<'a>] {
        match self.nodes[id as usize].kind {
            Kind::Element { attrs_start, attrs_end, .. } => &self.attrs[attrs_start as usize..attrs_end as usize],
            Kind::Text(_) => &[],
        }
    }

    /// An unprefixed attribute's value.
    pub(crate) fn attr(&self, id: NodeId, name: &str) -> Option<&str> {
        self.attrs(id).iter().find(|a| a.ns == Ns::None && a.name == name).map(|a| a.value.as_ref())
    }

    /// A non-empty, trimmed unprefixed attribute value.
    pub(crate) fn attr_nonempty(&self, id: NodeId, name: &str) -> Option<&str> {
        self.attr(id, name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// `xsi:type` (whatever the prefix), as (namespace of the value's prefix, local type name).
    pub(crate) fn xsi_type(&self, id: NodeId) -> Option<(Ns, &str)> {
        self.attrs(id)
            .iter()
            .find(|a| a.ns == Ns::Xsi && a.name == "type")
            .map(|a| (a.value_ns, a.value.rsplit(':').next().unwrap_or_default().trim()))
    }

    pub(crate) fn children(&self, id: NodeId) -> Children<'_, 'a> {
        Children { tree: self, next: self.nodes[id as usize].first_child }
    }

    /// Child elements in the CDA namespace with the given local name.
    pub(crate) fn cda_children<'t>(&'t self, id: NodeId, name: &'t str) -> impl Iterator<Item = NodeId> + 't {
        self.children(id).filter(move |&c| self.is_cda(c, name))
    }

    pub(crate) fn cda_child(&self, id: NodeId, name: &str) -> Option<NodeId> {
        self.cda_children(id, name).next()
    }

    /// Follows a path of CDA child names, taking the first match at each step.
    pub(crate) fn cda_path(&self, id: NodeId, path: &[&str]) -> Option<NodeId> {
        path.iter().try_fold(id, |node, name| self.cda_child(node, name))
    }

    pub(crate) fn is_cda(&self, id: NodeId, name: &str) -> bool {
        matches!(self.nodes[id as usize].kind, Kind::Element { ns: Ns::Cda, name: n, .. } if n == name)
    }

    /// All descendants (elements and text) in document order.
    pub(crate) fn descendants(&self, id: NodeId) -> Descendants<'_, 'a> {
        Descendants { tree: self, root: id, next: self.nodes[id as usize].first_child }
    }

    /// The text content of a node and all its descendants, whitespace runs collapsed.
    pub(crate) fn text_content(&self, id: NodeId) -> String {
        let mut out = String::new();
        if let Kind::Text(t) = &self.nodes[id as usize].kind {
            out.push_str(t);
        } else {
            for d in self.descendants(id) {
                match &self.nodes[d as usize].kind {
                    Kind::Text(t) => out.push_str(t),
                    // A line break in the narrative separates words.
                    Kind::Element { name: "br", .. } => out.push(' '),
                    _ => {}
                }
            }
        }
        collapse_whitespace(&out)
    }

    /// The direct text of an element (its text children only), untrimmed, borrowed when possible.
    pub(crate) fn own_text(&self, id: NodeId) -> Cow<'a, str> {
        let mut texts = self.children(id).filter_map(|c| match &self.nodes[c as usize].kind {
            Kind::Text(t) => Some(t),
            _ => None,
        });
        match (texts.next(), texts.next()) {
            (None, _) => Cow::Borrowed(""),
            (Some(first), None) => first.clone(),
            (Some(first), Some(second)) => {
                let mut s = String::from(first.as_ref());
                s.push_str(second);
                texts.for_each(|t| s.push_str(t));
                Cow::Owned(s)
            }
        }
    }

    /// The element carrying `ID="anchor"` (a `#anchor` reference without its `#`).
    pub(crate) fn by_id(&self, anchor: &str) -> Option<NodeId> {
        self.ids.get(anchor).copied()
    }

    pub(crate) fn text_of(&self, id: NodeId) -> Option<&Cow<'a, str>> {
        match &self.nodes[id as usize].kind {
            Kind::Text(t) => Some(t),
            Kind::Element { .. } => None,
        }
    }
}

pub(crate) struct Children<'t, 'a> {
    tree: &'t Tree<'a>,
    next: NodeId,
}

impl Iterator for Children<'_, '_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        if self.next == NONE {
            return None;
        }
        let current = self.next;
        self.next = self.tree.nodes[current as usize].next_sibling;
        Some(current)
    }
}

pub(crate) struct Descendants<'t, 'a> {
    tree: &'t Tree<'a>,
    root: NodeId,
    next: NodeId,
}

impl Iterator for Descendants<'_, '_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        if self.next == NONE {
            return None;
        }
        let current = self.next;
        let nodes = &self.tree.nodes;
        let node = &nodes[current as usize];
        self.next = if node.first_child != NONE {
            node.first_child
        } else {
            // Climb until a node with a next sibling, without leaving the subtree.
            let mut n = current;
            loop {
                if n == self.root {
                    break NONE;
                }
                let sibling = nodes[n as usize].next_sibling;
                if sibling != NONE {
                    break sibling;
                }
                n = nodes[n as usize].parent;
                if n == NONE || n == self.root {
                    break NONE;
                }
            }
        };
        Some(current)
    }
}

impl<'a> TextRun<'a> {
    fn push(&mut self, piece: Cow<'a, str>, offset: u64) {
        match &mut self.text {
            None => {
                self.text = Some(piece);
                self.offset = offset as u32;
            }
            Some(existing) => existing.to_mut().push_str(&piece),
        }
    }
}

/// Collapses runs of whitespace into one space and trims.
pub(crate) fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// quick-xml hands back `&str`s that borrow from the input but through a shorter lifetime in some
/// paths; re-derive the `'a` borrow from the input when the slice lies inside it.
/// `prefix:local` → (`prefix`, `local`); ("", name) without a prefix. Names are a few bytes:
/// a byte scan beats the general `split_once`.
fn split_prefix(name: &str) -> (&str, &str) {
    match name.bytes().position(|b| b == b':') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => ("", name),
    }
}

/// Reads a start, empty or end tag at the reader's position as quick-xml would (the closing
/// `>` found outside quoted values, as its `ElementParser` does; trailing whitespace trimmed
/// from end-tag names), or `None` to leave the markup to quick-xml.
fn read_tag<'a>(reader: &mut Reader<&'a [u8]>, text: &'a str, skipped: &mut u64) -> Option<Event<'a>> {
    let rest: &'a [u8] = reader.get_ref();
    if rest.first() != Some(&b'<') {
        return None;
    }
    let kind = *rest.get(1)?;
    if kind == b'!' || kind == b'?' {
        return None;
    }
    let mut quote = 0u8;
    let mut close = None;
    for i in memchr::memchr3_iter(b'>', b'\'', b'"', rest) {
        match (quote, rest[i]) {
            (0, b'>') => {
                close = Some(i);
                break;
            }
            (0, q) => quote = q,
            (q, c) if q == c => quote = 0,
            _ => {}
        }
    }
    let close = close?;
    let start = text.len() - rest.len();
    let inner = &text[start + 1..start + close];
    *reader.get_mut() = &rest[close + 1..];
    *skipped += close as u64 + 1;
    let is_blank = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let name_len = |content: &str| content.bytes().position(is_blank).unwrap_or(content.len());
    Some(if kind == b'/' {
        Event::End(quick_xml::events::BytesEnd::new(inner[1..].trim_end_matches(|c: char| c.is_ascii() && is_blank(c as u8))))
    } else if let Some(content) = inner.strip_suffix('/') {
        Event::Empty(quick_xml::events::BytesStart::from_content(content, name_len(content)))
    } else {
        Event::Start(quick_xml::events::BytesStart::from_content(inner, name_len(inner)))
    })
}

fn borrow_from<'a>(text: &'a str, piece: &str) -> &'a str {
    let start = piece.as_ptr() as usize;
    let base = text.as_ptr() as usize;
    if start >= base && start + piece.len() <= base + text.len() {
        let offset = start - base;
        &text[offset..offset + piece.len()]
    } else {
        // Not inside the input (an owned value): leak-free fallback is impossible for &'a str,
        // so callers only use this for names, which quick-xml always borrows from the input.
        // Keep an empty name rather than panic.
        ""
    }
}

fn rebind<'a>(text: &'a str, value: Cow<'_, str>) -> Cow<'a, str> {
    match value {
        Cow::Borrowed(b) => {
            let borrowed = borrow_from(text, b);
            if borrowed.len() == b.len() && (b.is_empty() || !borrowed.is_empty()) {
                Cow::Borrowed(borrowed)
            } else {
                Cow::Owned(b.to_string())
            }
        }
        Cow::Owned(o) => Cow::Owned(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Tree<'_>, XmlError> {
        Tree::parse(s, &Limits::default())
    }

    #[test]
    fn resolves_any_prefix_for_cda_and_xsi() {
        let doc = r#"<c:ClinicalDocument xmlns:c="urn:hl7-org:v3" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
            <c:value i:type="c:PQ" value="1.5" unit="mmol/L"/></c:ClinicalDocument>"#;
        let tree = parse(doc).unwrap();
        let value = tree.cda_child(tree.root(), "value").unwrap();
        assert_eq!(tree.xsi_type(value), Some((Ns::Cda, "PQ")));
        assert_eq!(tree.attr(value, "unit"), Some("mmol/L"));
    }

    /// Tags are read without quick-xml's reader (see `Tree::parse`): the same tree as it would
    /// give, the same errors where a tag is left open.
    #[test]
    fn reads_tags_as_quick_xml_would() {
        let doc = "<a xmlns=\"urn:hl7-org:v3\"><b x='>' y=\">'\">é<c/>t&amp;u</b\t\n ><d\n z=\"1\"\n/><!-- > --><e>v</e></a >";
        let tree = parse(doc).unwrap();
        let b = tree.cda_child(tree.root(), "b").unwrap();
        assert_eq!((tree.attr(b, "x"), tree.attr(b, "y")), (Some(">"), Some(">'")));
        assert_eq!(tree.text_content(b), "ét&u");
        assert!(tree.cda_child(b, "c").is_some(), "an empty element inside text");
        let d = tree.cda_child(tree.root(), "d").unwrap();
        assert_eq!(tree.attr(d, "z"), Some("1"));
        assert_eq!(tree.text_content(tree.cda_child(tree.root(), "e").unwrap()), "v");

        let open = parse("<a>\n<b x=\"1\"").unwrap_err();
        assert!(matches!(open.kind, XmlErrorKind::Malformed(_)), "{open:?}");
        assert_eq!((open.line, open.column), (2, 1), "the error is where the open tag starts");
        let quote = parse("<a><b x=\"1>text</b></a>").unwrap_err();
        assert!(matches!(quote.kind, XmlErrorKind::Malformed(_)), "{quote:?}");
        let mismatch = parse("<a>\n  <b></c></a>").unwrap_err();
        assert_eq!((mismatch.line, mismatch.column), (2, 6));
        assert!(matches!(mismatch.kind, XmlErrorKind::Malformed(ref m) if m.contains("expected </b>, found </c>")));
    }

    #[test]
    fn refuses_doctype_and_entity_bombs() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert_eq!(parse(bomb).unwrap_err().kind, XmlErrorKind::DoctypeRefused);
        let external = r#"<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#;
        assert_eq!(parse(external).unwrap_err().kind, XmlErrorKind::DoctypeRefused);
        let undefined = r#"<a>&x;</a>"#;
        assert_eq!(parse(undefined).unwrap_err().kind, XmlErrorKind::UndefinedEntity("x".into()));
    }

    #[test]
    fn expands_predefined_and_character_references() {
        let tree = parse(r#"<a xmlns="urn:hl7-org:v3">x &lt; 5 &amp; y &#233;t&#xE9;</a>"#).unwrap();
        assert_eq!(tree.text_content(tree.root()), "x < 5 & y été");
    }

    #[test]
    fn truncated_document_names_the_open_element_and_position() {
        let err = parse("<a>\n<b>\n<c>text").unwrap_err();
        assert!(matches!(err.kind, XmlErrorKind::Truncated(_)), "{err:?}");
        assert!(err.line >= 3, "{err:?}");
    }

    #[test]
    fn depth_cap_is_enforced() {
        let deep = "<a>".repeat(300) + &"</a>".repeat(300);
        assert_eq!(parse(&deep).unwrap_err().kind, XmlErrorKind::TooDeep { limit: 256 });
    }

    #[test]
    fn node_cap_is_enforced() {
        let wide = format!("<a>{}</a>", "<b/>".repeat(100));
        let limits = Limits { max_nodes: 50, ..Limits::default() };
        assert_eq!(Tree::parse(&wide, &limits).unwrap_err().kind, XmlErrorKind::TooManyNodes { limit: 50 });
    }

    #[test]
    fn decodes_latin1_and_refuses_bad_utf8() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xe9</a>";
        assert_eq!(decode(latin1, &Limits::default()).unwrap(), "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>é</a>");
        let bad = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>\xe9</a>";
        let err = decode(bad, &Limits::default()).unwrap_err();
        assert_eq!(err.kind, XmlErrorKind::InvalidUtf8);
        assert_eq!(err.offset, 41, "the offset of the bad byte");
        let utf16 = b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>";
        assert!(matches!(decode(utf16, &Limits::default()).unwrap_err().kind, XmlErrorKind::UnsupportedEncoding(_)));
    }

    #[test]
    fn mixed_content_keeps_word_order() {
        let tree = parse(r#"<text xmlns="urn:hl7-org:v3"><td ID="r1">Glucose <content>à jeun</content><br/>veineux</td></text>"#).unwrap();
        let td = tree.by_id("r1").unwrap();
        assert_eq!(tree.text_content(td), "Glucose à jeun veineux");
    }

    #[test]
    fn content_after_root_and_no_root_are_errors() {
        assert_eq!(parse("<a/><b/>").unwrap_err().kind, XmlErrorKind::TrailingContent);
        assert!(parse("just text").is_err());
        assert!(parse("<a></b>").is_err());
    }
}
