//! A small read-only element tree over quick-xml.
//!
//! SOAP answers and CDRs are a few kilobytes, and what we read from them is "the text of this
//! element under that one": a tree looked up by (namespace, local name) says that more plainly
//! than a streaming state machine. Bounded in depth and size, since the bytes come from the
//! network.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// Deeper than any SOAP answer or UBL document; bounds the parser's stack of open elements.
const MAX_DEPTH: usize = 64;
/// More elements than a CDR with hundreds of notes; bounds the memory one answer can take.
const MAX_ELEMENTS: usize = 50_000;

/// One element: its namespace (None when unqualified), local name, child elements and its own
/// text (unescaped, CDATA included, children's text excluded).
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// The first child with this namespace and local name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name == name && c.ns.as_deref() == Some(ns))
    }

    /// The first child with this local name, whatever its namespace: the parts of SUNAT's
    /// answers that are unqualified in its WSDL (`applicationResponse`, `faultcode`) are written
    /// qualified by some servers.
    pub fn child_named(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this namespace and local name.
    pub fn children<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children
            .iter()
            .filter(move |c| c.name == name && c.ns.as_deref() == Some(ns))
    }

    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && self.ns.as_deref() == Some(ns)
    }

    /// The element's own text, trimmed.
    pub fn trimmed(&self) -> &str {
        self.text.trim()
    }
}

/// Parses a whole document into its root element.
pub(crate) fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(xml);
    // Open elements, innermost last.
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if root.is_some() {
                    return Err("more than one root element".into());
                }
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(format!("more than {MAX_ELEMENTS} elements"));
                }
                let element = Element {
                    ns: match ns {
                        ResolveResult::Bound(ns) => Some(ns.0.to_owned()),
                        ResolveResult::Unbound => None,
                        ResolveResult::Unknown(prefix) => {
                            return Err(format!("undeclared namespace prefix '{prefix}'"));
                        }
                    },
                    name: start.local_name().as_ref().to_owned(),
                    ..Element::default()
                };
                if matches!(event, Event::Empty(_)) {
                    close(element, &mut open, &mut root);
                } else {
                    if open.len() >= MAX_DEPTH {
                        return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                    }
                    open.push(element);
                }
            }
            Event::End(_) => {
                // quick-xml checks the end tag's name; an End with nothing open cannot happen.
                let element = open.pop().ok_or("end tag without a start tag")?;
                close(element, &mut open, &mut root);
            }
            Event::Text(text) => push_text(&mut open, &text.xml10_content())?,
            Event::CData(data) => push_text(&mut open, &data.xml10_content())?,
            Event::GeneralRef(reference) => {
                let resolved: Cow<'_, str> = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => Cow::Owned(ch.to_string()),
                    Ok(None) => Cow::Borrowed(
                        quick_xml::escape::resolve_predefined_entity(&reference)
                            .ok_or_else(|| format!("unknown entity '&{};'", &*reference))?,
                    ),
                    Err(e) => return Err(e.to_string()),
                };
                push_text(&mut open, &resolved)?;
            }
            Event::Eof => {
                if let Some(element) = open.last() {
                    return Err(format!("unclosed element '{}'", element.name));
                }
                return root.ok_or_else(|| "no root element".into());
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
}

fn close(element: Element, open: &mut [Element], root: &mut Option<Element>) {
    match open.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn push_text(open: &mut [Element], text: &str) -> Result<(), String> {
    match open.last_mut() {
        Some(element) => element.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err("text outside the root element".into()),
    }
    Ok(())
}

/// The document as text: UTF-8, or ISO-8859-1 when its declaration says so (older SUNAT
/// documents were written in it).
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(e) => {
            let head = &bytes[..bytes.len().min(100)];
            let head = String::from_utf8_lossy(head).to_ascii_lowercase();
            if head.starts_with("<?xml") && head.contains("iso-8859-1") {
                Ok(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()))
            } else {
                Err(format!("not UTF-8: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespaces_text_entities_and_cdata() {
        let root =
            parse(r#"<?xml version="1.0"?><a:r xmlns:a="urn:a"><b>x &amp; y &#65;<![CDATA[<z>]]></b><c/></a:r>"#)
                .unwrap();
        assert!(root.is("urn:a", "r"));
        let b = root.child_named("b").unwrap();
        assert_eq!(b.ns, None);
        assert_eq!(b.text, "x & y A<z>");
        assert!(root.child_named("c").is_some());
    }

    #[test]
    fn refuses_what_is_not_one_well_formed_document() {
        for bad in [
            "",
            "   ",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text",
            "<p:a/>",
            "<a>&nbsp;</a>",
            "</a>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn bounds_depth() {
        let deep = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        assert!(parse(&deep).unwrap_err().contains("deeper"));
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn decodes_latin1_when_declared() {
        let bytes = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xf1</a>";
        assert_eq!(parse(&decode(bytes).unwrap()).unwrap().text, "ñ");
        assert!(decode(b"<a>\xf1</a>").is_err());
    }
}
