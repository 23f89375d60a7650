//! The section narrative (`text`) rewritten as safe HTML.
//!
//! Only an allow-list of CDA narrative elements is kept, mapped to their HTML equivalent; every
//! attribute is dropped except `colspan`/`rowspan` (digits only) and `styleCode` (mapped to fixed
//! class names). Text is escaped. Links become plain text and multimedia a placeholder naming its
//! anchor: nothing in a document can run script, load a resource or navigate.

use crate::xml::{NodeId, Ns, Tree};

pub(crate) fn to_safe_html(tree: &Tree<'_>, text: NodeId) -> String {
    let mut out = String::new();
    for child in tree.children(text) {
        write_node(tree, child, &mut out, 0);
    }
    out.trim().to_string()
}

/// Deeper narrative than this is flattened to text (the XML tree is already depth-capped; this
/// keeps the HTML shallow for the browser).
const MAX_HTML_DEPTH: usize = 32;

fn write_node(tree: &Tree<'_>, node: NodeId, out: &mut String, depth: usize) {
    if let Some(text) = tree.text_of(node) {
        escape_into(text, out);
        return;
    }
    if tree.ns(node) != Ns::Cda || depth > MAX_HTML_DEPTH {
        write_children(tree, node, out, depth);
        return;
    }
    let tag = match tree.name(node) {
        "paragraph" => "p",
        "content" | "linkHtml" | "footnote" | "footnoteRef" => "span",
        "list" => {
            if tree.attr(node, "listType") == Some("ordered") {
                "ol"
            } else {
                "ul"
            }
        }
        "item" => "li",
        name @ ("table" | "thead" | "tbody" | "tfoot" | "tr" | "th" | "td" | "caption" | "col" | "colgroup" | "sub" | "sup") => name,
        "br" => {
            out.push_str("<br>");
            return;
        }
        "renderMultiMedia" => {
            out.push_str("<span class=\"bv-media\" data-ref=\"");
            escape_into(tree.attr(node, "referencedObject").unwrap_or_default(), out);
            out.push_str("\"></span>");
            return;
        }
        // Unknown elements keep their text, not their markup.
        _ => {
            write_children(tree, node, out, depth);
            return;
        }
    };
    out.push('<');
    out.push_str(tag);
    for span in ["colspan", "rowspan"] {
        if let Some(v) = tree.attr(node, span).filter(|v| !v.is_empty() && v.len() <= 3 && v.bytes().all(|b| b.is_ascii_digit())) {
            out.push_str(&format!(" {span}=\"{v}\""));
        }
    }
    if let Some(style) = tree.attr(node, "styleCode") {
        let classes: Vec<&str> = style
            .split_whitespace()
            .filter_map(|s| match s {
                "Bold" => Some("bv-bold"),
                "Italics" => Some("bv-italic"),
                "Underline" => Some("bv-underline"),
                "Emphasis" => Some("bv-emphasis"),
                _ => None,
            })
            .collect();
        if !classes.is_empty() {
            out.push_str(" class=\"");
            out.push_str(&classes.join(" "));
            out.push('"');
        }
    }
    out.push('>');
    if tag != "col" {
        write_children(tree, node, out, depth + 1);
        out.push_str("</");
        out.push_str(tag);
        out.push('>');
    }
}

fn write_children(tree: &Tree<'_>, node: NodeId, out: &mut String, depth: usize) {
    for child in tree.children(node) {
        write_node(tree, child, out, depth);
    }
}

fn escape_into(text: &str, out: &mut String) {
    // Copy runs between special characters in one go.
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let replacement = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            // Raw line ends from the document: HTML needs none of them.
            b'\r' => "",
            _ => continue,
        };
        out.push_str(&text[last..i]);
        out.push_str(replacement);
        last = i + 1;
    }
    out.push_str(&text[last..]);
}

#[cfg(test)]
mod tests {
    use crate::xml::{Limits, Tree};

    fn html(narrative: &str) -> String {
        let doc = format!(r#"<text xmlns="urn:hl7-org:v3" xmlns:h="http://www.w3.org/1999/xhtml">{narrative}</text>"#);
        let tree = Tree::parse(&doc, &Limits::default()).unwrap();
        super::to_safe_html(&tree, tree.root())
    }

    #[test]
    fn keeps_tables_and_emphasis() {
        assert_eq!(
            html(r#"<table border="1" onclick="x()"><tr><td colspan="2" styleCode="Bold">Na &lt; 135</td></tr></table>"#),
            r#"<table><tr><td colspan="2" class="bv-bold">Na &lt; 135</td></tr></table>"#
        );
    }

    #[test]
    fn nothing_from_the_document_can_run_or_load() {
        let out = html(
            r#"<h:script>alert(1)</h:script><linkHtml href="javascript:alert(1)">lien</linkHtml><content styleCode="x&quot; onmouseover=&quot;y">t</content><td colspan="1 onload=x">z</td><renderMultiMedia referencedObject="a&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"/>"#,
        );
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("href"), "{out}");
        assert!(!out.contains("onmouseover"), "{out}");
        assert!(!out.contains("onload"), "{out}");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("lien"), "link text kept: {out}");
    }
}
