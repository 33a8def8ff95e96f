//! Small namespace-aware XML helpers over quick-xml: escaping and collecting element text by
//! (namespace, local name).

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// Escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
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

fn entity(name: &str) -> Option<String> {
    Some(match name {
        "amp" => "&".into(),
        "lt" => "<".into(),
        "gt" => ">".into(),
        "quot" => "\"".into(),
        "apos" => "'".into(),
        n if n.starts_with("#x") => char::from_u32(u32::from_str_radix(&n[2..], 16).ok()?)?.to_string(),
        n if n.starts_with('#') => char::from_u32(n[1..].parse().ok()?)?.to_string(),
        _ => return None,
    })
}

/// An element found in a document: namespace, local name, path of ancestors' local names, text.
#[derive(Debug, Clone)]
pub struct Element {
    /// Namespace URI (empty when none).
    pub ns: String,
    /// Local name.
    pub local: String,
    /// Local names of the ancestors, outermost first.
    pub path: Vec<String>,
    /// Concatenated direct text (entities resolved).
    pub text: String,
    /// `xsi:nil="true"` was set.
    pub nil: bool,
}

/// Parses a document into a flat list of elements (in document order). Rejects DTDs.
pub fn elements(doc: &str) -> Result<Vec<Element>, String> {
    let mut r = NsReader::from_str(doc);
    let mut out: Vec<Element> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    loop {
        let (res, ev) = r.read_resolved_event().map_err(|e| e.to_string())?;
        let ns = match res {
            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
            _ => String::new(),
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let nil = e.attributes().flatten().any(|a| a.key.local_name().as_ref() == b"nil" && a.value.as_ref() == b"true");
                let path = stack.iter().map(|&i| out[i].local.clone()).collect();
                out.push(Element { ns, local, path, text: String::new(), nil });
                if matches!(ev, Event::Start(_)) {
                    stack.push(out.len() - 1);
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => {
                if let Some(&i) = stack.last() {
                    out[i].text.push_str(&String::from_utf8_lossy(t.as_ref()));
                }
            }
            Event::CData(t) => {
                if let Some(&i) = stack.last() {
                    out[i].text.push_str(&String::from_utf8_lossy(t.as_ref()));
                }
            }
            Event::GeneralRef(t) => {
                let name = String::from_utf8_lossy(t.as_ref()).into_owned();
                let v = entity(&name).ok_or_else(|| format!("unknown entity &{name};"))?;
                if let Some(&i) = stack.last() {
                    out[i].text.push_str(&v);
                }
            }
            Event::DocType(_) => return Err("DTDs are not allowed".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// The text of the first element with this local name (any namespace).
pub fn first_text(els: &[Element], local: &str) -> Option<String> {
    els.iter().find(|e| e.local == local).map(|e| e.text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_entities_and_namespaces() {
        let els = elements(
            r#"<a xmlns="urn:x"><b>p&amp;w&#65;</b><c xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/></a>"#,
        )
        .expect("parse");
        assert_eq!(els[1].text, "p&wA");
        assert_eq!(els[1].ns, "urn:x");
        assert!(els[2].nil);
        assert!(elements("<!DOCTYPE x []><x/>").is_err());
    }
}
