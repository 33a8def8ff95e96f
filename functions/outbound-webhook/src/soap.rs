//! A strict, namespace-aware streaming parser for Salesforce outbound messages (SOAP 1.1).
//!
//! Elements are matched by namespace URI and local name, never by prefix. The parser reads
//! the body once with quick-xml's [`NsReader`], allocates only what it returns, and refuses
//! DTDs, unknown entities, unknown elements, text where elements belong, more than
//! [`MAX_NOTIFICATIONS`] notifications and more than [`MAX_FIELDS`] fields per sObject. Its
//! memory use is bounded by the size of its input (itself bounded by the endpoint).

use std::borrow::Cow;
use std::collections::BTreeMap;

pub use forcelink::intake::Notification;
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};

/// SOAP 1.1 envelope namespace.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Salesforce outbound messaging namespace.
pub const OUTBOUND_NS: &str = "http://soap.sforce.com/2005/09/outbound";
/// XML Schema instance namespace (`xsi:nil`, `xsi:type`).
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Salesforce sends 1 to 100 notifications per message.
pub const MAX_NOTIFICATIONS: usize = forcelink::intake::MAX_PER_MESSAGE;
/// Fields per sObject we accept (Salesforce objects have at most 800 custom fields).
pub const MAX_FIELDS: usize = 1000;
/// Nesting allowed inside an ignored `soapenv:Header`.
const MAX_HEADER_DEPTH: usize = 32;

/// One outbound message: the org, the action and its notifications.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub organization_id: String,
    pub action_id: Option<String>,
    /// A session id (`00D…!token`) when "Send Session ID" is on. A secret: never logged.
    pub session_id: Option<String>,
    pub enterprise_url: Option<String>,
    pub partner_url: Option<String>,
    pub notifications: Vec<Notification>,
}

impl std::fmt::Debug for OutboundMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundMessage")
            .field("organization_id", &self.organization_id)
            .field("action_id", &self.action_id)
            .field("session_id", &self.session_id.as_ref().map(|_| "<redacted>"))
            .field("enterprise_url", &self.enterprise_url)
            .field("partner_url", &self.partner_url)
            .field("notifications", &self.notifications)
            .finish()
    }
}

/// Why a message was refused. Every variant is safe to show to the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("DTDs and entity declarations are not accepted")]
    Dtd,
    #[error("unknown entity reference &{0};")]
    Entity(String),
    #[error("unexpected {found}; expected {expected}")]
    Unexpected { found: String, expected: &'static str },
    #[error("{0}")]
    Invalid(String),
    #[error("a message carries 1 to {MAX_NOTIFICATIONS} notifications; this one has more")]
    TooMany,
}

impl From<quick_xml::Error> for SoapError {
    fn from(e: quick_xml::Error) -> Self {
        SoapError::Xml(e.to_string())
    }
}

impl From<quick_xml::encoding::EncodingError> for SoapError {
    fn from(e: quick_xml::encoding::EncodingError) -> Self {
        SoapError::Xml(e.to_string())
    }
}

impl From<quick_xml::events::attributes::AttrError> for SoapError {
    fn from(e: quick_xml::events::attributes::AttrError) -> Self {
        SoapError::Xml(e.to_string())
    }
}

/// Parses an outbound message.
pub fn parse(body: &[u8]) -> Result<OutboundMessage, SoapError> {
    Parser::new(body).document()
}

/// Which namespace an element is in, as far as the parser cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    None,
    SoapEnv,
    Outbound,
    /// The namespace of the sObject being read (`xsi:type`'s namespace).
    SObject,
    Other,
}

/// A start tag, resolved.
struct El {
    ns: Ns,
    local: String,
    nil: bool,
    /// `xsi:type`'s resolved (namespace, local name).
    xsi_type: Option<(Vec<u8>, String)>,
    /// `<x/>`: no content and no end tag follow.
    empty: bool,
}

impl El {
    fn describe(&self) -> String {
        format!("element <{}> ({})", self.local, ns_label(self.ns))
    }
}

fn ns_label(ns: Ns) -> &'static str {
    match ns {
        Ns::None => "no namespace",
        Ns::SoapEnv => "SOAP envelope namespace",
        Ns::Outbound => "outbound namespace",
        Ns::SObject => "sObject namespace",
        Ns::Other => "another namespace",
    }
}

/// What came next in element-only content.
enum Child {
    Start(El),
    End,
}

struct Parser<'a> {
    r: NsReader<&'a [u8]>,
    /// The current sObject's namespace, while reading one.
    sobject_ns: Vec<u8>,
}

impl<'a> Parser<'a> {
    fn new(body: &'a [u8]) -> Self {
        let mut r = NsReader::from_reader(body);
        let config = r.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Self { r, sobject_ns: Vec::new() }
    }

    fn document(mut self) -> Result<OutboundMessage, SoapError> {
        // Prolog: declaration, comments, whitespace.
        let root = match self.child()? {
            Some(Child::Start(el)) => el,
            Some(Child::End) => return Err(unexpected("an end tag", "the SOAP Envelope")),
            None => return Err(unexpected("the end of the document", "the SOAP Envelope")),
        };
        if root.ns != Ns::SoapEnv || root.local != "Envelope" {
            return Err(SoapError::Unexpected { found: root.describe(), expected: "a SOAP 1.1 Envelope" });
        }
        if root.empty {
            return Err(unexpected("an empty Envelope", "a SOAP Body"));
        }
        let mut message = None;
        loop {
            match self.expect_child("Header or Body")? {
                Child::Start(el) if el.ns == Ns::SoapEnv && el.local == "Header" && message.is_none() => self.skip(&el)?,
                Child::Start(el) if el.ns == Ns::SoapEnv && el.local == "Body" && message.is_none() => {
                    message = Some(self.body(&el)?);
                }
                Child::Start(el) => return Err(SoapError::Unexpected { found: el.describe(), expected: "the SOAP Header or Body" }),
                Child::End => break,
            }
        }
        // Epilog: only comments and whitespace.
        if let Some(child) = self.child()? {
            let found = match child {
                Child::Start(el) => el.describe(),
                Child::End => "an end tag".into(),
            };
            return Err(SoapError::Unexpected { found, expected: "the end of the document" });
        }
        message.ok_or_else(|| unexpected("an Envelope without a Body", "a SOAP Body"))
    }

    fn body(&mut self, body: &El) -> Result<OutboundMessage, SoapError> {
        if body.empty {
            return Err(unexpected("an empty Body", "notifications"));
        }
        let mut message = None;
        loop {
            match self.expect_child("notifications")? {
                Child::Start(el) if el.ns == Ns::Outbound && el.local == "notifications" && message.is_none() => {
                    message = Some(self.notifications(&el)?);
                }
                Child::Start(el) => {
                    return Err(SoapError::Unexpected { found: el.describe(), expected: "one notifications element (outbound namespace)" });
                }
                Child::End => break,
            }
        }
        message.ok_or_else(|| unexpected("a Body without notifications", "notifications"))
    }

    fn notifications(&mut self, el: &El) -> Result<OutboundMessage, SoapError> {
        let mut msg = OutboundMessage {
            organization_id: String::new(),
            action_id: None,
            session_id: None,
            enterprise_url: None,
            partner_url: None,
            notifications: Vec::new(),
        };
        let (mut org, mut action, mut session, mut enterprise, mut partner) = (None, None, None, None, None);
        if el.empty {
            return Err(SoapError::Invalid("notifications is empty".into()));
        }
        loop {
            let child = match self.expect_child("a notifications child")? {
                Child::End => break,
                Child::Start(c) if c.ns == Ns::Outbound => c,
                Child::Start(c) => {
                    return Err(SoapError::Unexpected { found: c.describe(), expected: "an element of the outbound namespace" });
                }
            };
            match child.local.as_str() {
                "OrganizationId" => once(&mut org, self.leaf(&child)?.map(trimmed), "OrganizationId")?,
                "ActionId" => once(&mut action, self.leaf(&child)?.map(trimmed), "ActionId")?,
                "SessionId" => once(&mut session, self.leaf(&child)?.map(trimmed), "SessionId")?,
                "EnterpriseUrl" => once(&mut enterprise, self.leaf(&child)?.map(trimmed), "EnterpriseUrl")?,
                "PartnerUrl" => once(&mut partner, self.leaf(&child)?.map(trimmed), "PartnerUrl")?,
                "Notification" => {
                    if msg.notifications.len() == MAX_NOTIFICATIONS {
                        return Err(SoapError::TooMany);
                    }
                    let n = self.notification(&child)?;
                    msg.notifications.push(n);
                }
                _ => {
                    return Err(SoapError::Unexpected {
                        found: child.describe(),
                        expected: "OrganizationId, ActionId, SessionId, EnterpriseUrl, PartnerUrl or Notification",
                    });
                }
            }
        }
        msg.action_id = action.flatten();
        msg.session_id = session.flatten();
        msg.enterprise_url = enterprise.flatten();
        msg.partner_url = partner.flatten();
        msg.organization_id = org.flatten().ok_or_else(|| SoapError::Invalid("OrganizationId is missing".into()))?;
        if msg.notifications.is_empty() {
            return Err(SoapError::Invalid("the message has no Notification".into()));
        }
        Ok(msg)
    }

    fn notification(&mut self, el: &El) -> Result<Notification, SoapError> {
        if el.empty {
            return Err(SoapError::Invalid("a Notification is empty".into()));
        }
        let mut id = None;
        let mut sobject = None;
        loop {
            let child = match self.expect_child("Id or sObject")? {
                Child::End => break,
                Child::Start(c) if c.ns == Ns::Outbound => c,
                Child::Start(c) => {
                    return Err(SoapError::Unexpected { found: c.describe(), expected: "Id or sObject (outbound namespace)" });
                }
            };
            match child.local.as_str() {
                "Id" => once(&mut id, self.leaf(&child)?.map(trimmed), "Notification Id")?,
                "sObject" => {
                    let object = self.sobject(&child)?;
                    once(&mut sobject, object, "sObject")?;
                }
                _ => return Err(SoapError::Unexpected { found: child.describe(), expected: "Id or sObject" }),
            }
        }
        let id = id.flatten().ok_or_else(|| SoapError::Invalid("a Notification has no Id".into()))?;
        let (object, fields) = sobject.ok_or_else(|| SoapError::Invalid(format!("Notification {id} has no sObject")))?;
        Ok(Notification { id, object, fields })
    }

    #[allow(clippy::type_complexity)]
    fn sobject(&mut self, el: &El) -> Result<(String, BTreeMap<String, Option<String>>), SoapError> {
        let Some((ns, object)) = &el.xsi_type else {
            return Err(SoapError::Invalid("an sObject has no xsi:type (e.g. xsi:type=\"sf:Contact\")".into()));
        };
        if object.is_empty() || !object.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(SoapError::Invalid(format!("sObject type {object:?} is not an API name")));
        }
        self.sobject_ns.clear();
        self.sobject_ns.extend_from_slice(ns);
        let mut fields = BTreeMap::new();
        if el.empty {
            return Ok((object.clone(), fields));
        }
        loop {
            let child = match self.expect_child("an sObject field")? {
                Child::End => break,
                Child::Start(c) if c.ns == Ns::SObject => c,
                Child::Start(c) => {
                    return Err(SoapError::Unexpected { found: c.describe(), expected: "a field in the sObject's namespace" });
                }
            };
            if fields.len() == MAX_FIELDS {
                return Err(SoapError::Invalid(format!("an sObject has more than {MAX_FIELDS} fields")));
            }
            let value = self.leaf(&child)?;
            if fields.insert(child.local.clone(), value).is_some() {
                return Err(SoapError::Invalid(format!("field {} appears twice in one sObject", child.local)));
            }
        }
        self.sobject_ns.clear();
        Ok((object.clone(), fields))
    }

    /// Text-only content up to the element's end tag; `None` for `xsi:nil="true"`.
    fn leaf(&mut self, el: &El) -> Result<Option<String>, SoapError> {
        if el.empty {
            return Ok(if el.nil { None } else { Some(String::new()) });
        }
        let mut text = String::new();
        loop {
            match self.r.read_event()? {
                Event::Text(t) => text.push_str(&t.decode()?),
                Event::CData(t) => text.push_str(&t.decode()?),
                Event::GeneralRef(r) => push_reference(&mut text, &r)?,
                Event::Comment(_) => {}
                Event::End(_) => break,
                Event::Start(s) | Event::Empty(s) => {
                    return Err(SoapError::Unexpected { found: format!("element <{}>", lossy(s.local_name().as_ref())), expected: "text" });
                }
                Event::DocType(_) => return Err(SoapError::Dtd),
                Event::Eof => return Err(unexpected("the end of the document", "an end tag")),
                Event::Decl(_) | Event::PI(_) => return Err(unexpected("a processing instruction", "text")),
            }
        }
        if el.nil {
            if !text.trim().is_empty() {
                return Err(SoapError::Invalid(format!("field {} is xsi:nil but has a value", el.local)));
            }
            return Ok(None);
        }
        Ok(Some(text))
    }

    /// Skips an element and everything in it (the SOAP Header).
    fn skip(&mut self, el: &El) -> Result<(), SoapError> {
        if el.empty {
            return Ok(());
        }
        let mut depth = 1usize;
        while depth > 0 {
            match self.r.read_event()? {
                Event::Start(_) => {
                    depth += 1;
                    if depth > MAX_HEADER_DEPTH {
                        return Err(SoapError::Invalid("the SOAP Header is nested too deeply".into()));
                    }
                }
                Event::End(_) => depth -= 1,
                Event::GeneralRef(r) => push_reference(&mut String::new(), &r)?,
                Event::DocType(_) => return Err(SoapError::Dtd),
                Event::Eof => return Err(unexpected("the end of the document", "an end tag")),
                _ => {}
            }
        }
        Ok(())
    }

    fn expect_child(&mut self, expected: &'static str) -> Result<Child, SoapError> {
        self.child()?.ok_or(SoapError::Unexpected { found: "the end of the document".into(), expected })
    }

    /// The next element event in element-only content (whitespace and comments skipped);
    /// `None` at the end of the document.
    fn child(&mut self) -> Result<Option<Child>, SoapError> {
        loop {
            let (resolved, event) = self.r.read_resolved_event()?;
            let ns = classify(&resolved, &self.sobject_ns);
            match event {
                Event::Start(s) => return Ok(Some(Child::Start(self.element(ns, &s, false)?))),
                Event::Empty(s) => return Ok(Some(Child::Start(self.element(ns, &s, true)?))),
                Event::End(_) => return Ok(Some(Child::End)),
                Event::Text(t) => {
                    if !t.iter().all(u8::is_ascii_whitespace) {
                        return Err(unexpected("text", "an element"));
                    }
                }
                Event::GeneralRef(_) | Event::CData(_) => return Err(unexpected("text", "an element")),
                Event::Comment(_) => {}
                Event::Decl(d) => {
                    if let Some(enc) = d.encoding() {
                        let enc = enc?;
                        if !enc.eq_ignore_ascii_case(b"utf-8") {
                            return Err(SoapError::Invalid(format!("encoding {} is not supported; send UTF-8", lossy(&enc))));
                        }
                    }
                }
                Event::PI(_) => return Err(unexpected("a processing instruction", "an element")),
                Event::DocType(_) => return Err(SoapError::Dtd),
                Event::Eof => return Ok(None),
            }
        }
    }

    fn element(&self, ns: Ns, start: &BytesStart<'_>, empty: bool) -> Result<El, SoapError> {
        let local = std::str::from_utf8(start.local_name().into_inner()).map_err(|e| SoapError::Xml(e.to_string()))?.to_string();
        let mut nil = false;
        let mut xsi_type = None;
        for attr in start.attributes() {
            let attr = attr?;
            let (attr_ns, attr_local) = self.r.resolver().resolve_attribute(attr.key);
            if !matches!(attr_ns, ResolveResult::Bound(n) if n.as_ref() == XSI_NS.as_bytes()) {
                continue;
            }
            match attr_local.as_ref() {
                b"nil" => {
                    let v = attr.unescape_value()?;
                    nil = match v.trim() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(SoapError::Invalid(format!("xsi:nil={other:?} is not a boolean"))),
                    };
                }
                b"type" => {
                    let v = attr.unescape_value()?;
                    let (type_ns, type_local) = self.r.resolver().resolve_element(QName(v.trim().as_bytes()));
                    let type_ns = match type_ns {
                        ResolveResult::Bound(n) => n.as_ref().to_vec(),
                        ResolveResult::Unbound => Vec::new(),
                        ResolveResult::Unknown(p) => {
                            return Err(SoapError::Invalid(format!("xsi:type uses the undeclared prefix {}", lossy(&p))));
                        }
                    };
                    let type_local = std::str::from_utf8(type_local.into_inner()).map_err(|e| SoapError::Xml(e.to_string()))?;
                    xsi_type = Some((type_ns, type_local.to_string()));
                }
                _ => {}
            }
        }
        Ok(El { ns, local, nil, xsi_type, empty })
    }
}

fn classify(resolved: &ResolveResult<'_>, sobject_ns: &[u8]) -> Ns {
    match resolved {
        ResolveResult::Bound(n) => {
            let n = n.as_ref();
            if n == OUTBOUND_NS.as_bytes() {
                Ns::Outbound
            } else if n == SOAP_ENV_NS.as_bytes() {
                Ns::SoapEnv
            } else if !sobject_ns.is_empty() && n == sobject_ns {
                Ns::SObject
            } else {
                Ns::Other
            }
        }
        ResolveResult::Unbound if sobject_ns.is_empty() => Ns::None,
        ResolveResult::Unbound => Ns::None,
        ResolveResult::Unknown(_) => Ns::Other,
    }
}

/// Appends a predefined entity or a character reference; anything else is refused.
fn push_reference(text: &mut String, r: &quick_xml::events::BytesRef<'_>) -> Result<(), SoapError> {
    if let Some(c) = r.resolve_char_ref()? {
        text.push(c);
        return Ok(());
    }
    let name = r.decode()?;
    match quick_xml::escape::resolve_predefined_entity(&name) {
        Some(s) => {
            text.push_str(s);
            Ok(())
        }
        None => Err(SoapError::Entity(name.chars().take(40).collect())),
    }
}

fn once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), SoapError> {
    if slot.is_some() {
        return Err(SoapError::Invalid(format!("{what} appears twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn trimmed(s: String) -> String {
    let t = s.trim();
    if t.len() == s.len() { s } else { t.to_string() }
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
}

fn unexpected(found: &str, expected: &'static str) -> SoapError {
    SoapError::Unexpected { found: found.into(), expected }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5g000000AbCdEAK</OrganizationId>
   <ActionId>04k5g000000XyZaAAB</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/64.0/00D5g000000AbCd</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/64.0/00D5g000000AbCd</PartnerUrl>
   <Notification>
    <Id>04l5g00000ABCDEAA1</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0035g00000QRSTUAA2</sf:Id>
     <sf:Email>ana@example.com</sf:Email>
     <sf:Phone xsi:nil="true"/>
     <sf:Survey_Opt_In__c>true</sf:Survey_Opt_In__c>
     <sf:SystemModstamp>2026-03-01T10:15:00.000Z</sf:SystemModstamp>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

    #[test]
    fn parses_the_documented_message() {
        let m = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(m.organization_id, "00D5g000000AbCdEAK");
        assert_eq!(m.action_id.as_deref(), Some("04k5g000000XyZaAAB"));
        assert_eq!(m.session_id, None);
        assert_eq!(m.notifications.len(), 1);
        let n = &m.notifications[0];
        assert_eq!(n.id, "04l5g00000ABCDEAA1");
        assert_eq!(n.object, "Contact");
        assert_eq!(n.fields["Email"].as_deref(), Some("ana@example.com"));
        assert_eq!(n.fields["Phone"], None);
        assert_eq!(n.fields.len(), 5);
    }

    #[test]
    fn prefixes_do_not_matter_namespaces_do() {
        let other = SAMPLE
            .replace("soapenv:", "S:")
            .replace("xmlns:soapenv=", "xmlns:S=")
            .replace(
                "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">",
                "<ob:notifications xmlns:ob=\"http://soap.sforce.com/2005/09/outbound\">",
            )
            .replace("</notifications>", "</ob:notifications>")
            .replace("sf:", "q:")
            .replace("xmlns:sf=", "xmlns:q=")
            .replace("xsi:", "i:")
            .replace("xmlns:xsi=", "xmlns:i=");
        let a = parse(SAMPLE.as_bytes()).unwrap();
        let b = parse(other.as_bytes());
        // children of ob:notifications without prefix are now in no namespace: refused
        assert!(b.is_err(), "{b:?}");
        let fixed = other
            .replace("<OrganizationId>", "<ob:OrganizationId>")
            .replace("</OrganizationId>", "</ob:OrganizationId>")
            .replace("<ActionId>", "<ob:ActionId>")
            .replace("</ActionId>", "</ob:ActionId>")
            .replace("<SessionId ", "<ob:SessionId ")
            .replace("<EnterpriseUrl>", "<ob:EnterpriseUrl>")
            .replace("</EnterpriseUrl>", "</ob:EnterpriseUrl>")
            .replace("<PartnerUrl>", "<ob:PartnerUrl>")
            .replace("</PartnerUrl>", "</ob:PartnerUrl>")
            .replace("<Notification>", "<ob:Notification>")
            .replace("</Notification>", "</ob:Notification>")
            .replace("<Id>", "<ob:Id>")
            .replace("</Id>", "</ob:Id>")
            .replace("<sObject ", "<ob:sObject ")
            .replace("</sObject>", "</ob:sObject>");
        assert_eq!(parse(fixed.as_bytes()).unwrap(), a);
        // The right prefix on the wrong namespace is refused.
        let wrong = SAMPLE.replace("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope");
        assert!(matches!(parse(wrong.as_bytes()), Err(SoapError::Unexpected { .. })));
    }

    #[test]
    fn entities_are_decoded_and_unknown_ones_refused() {
        let m = parse(SAMPLE.replace("ana@example.com", "a&amp;b &lt;&#65;&#x42;&gt; &quot;q&apos;").as_bytes()).unwrap();
        assert_eq!(m.notifications[0].fields["Email"].as_deref(), Some("a&b <AB> \"q'"));
        assert_eq!(parse(SAMPLE.replace("ana@example.com", "&xxe;").as_bytes()), Err(SoapError::Entity("xxe".into())));
    }

    #[test]
    fn dtds_are_refused() {
        let evil = SAMPLE.replacen("<soapenv:Envelope", "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<soapenv:Envelope", 1);
        assert_eq!(parse(evil.as_bytes()), Err(SoapError::Dtd));
    }

    #[test]
    fn limits_and_shape() {
        let one = &SAMPLE[SAMPLE.find("<Notification>").unwrap()..SAMPLE.find("</notifications>").unwrap()];
        let many = SAMPLE.replace(one, &one.repeat(101));
        assert_eq!(parse(many.as_bytes()), Err(SoapError::TooMany));
        let hundred = SAMPLE.replace(one, &one.repeat(100));
        assert_eq!(parse(hundred.as_bytes()).unwrap().notifications.len(), 100);
        let none = SAMPLE.replace(one, "");
        assert!(parse(none.as_bytes()).is_err());
        assert!(parse(SAMPLE.replace("<sf:Email>ana", "<sf:Email><b/>ana").as_bytes()).is_err());
        assert!(parse(SAMPLE.replace("<sf:Id>", "junk<sf:Id>").as_bytes()).is_err());
        assert!(parse(SAMPLE.replace(" xsi:type=\"sf:Contact\"", "").as_bytes()).is_err());
        assert!(parse(SAMPLE.replace("</soapenv:Envelope>", "</soapenv:Envelope><x/>").as_bytes()).is_err());
        assert!(parse(b"").is_err());
        assert!(parse(&SAMPLE.as_bytes()[..SAMPLE.len() / 2]).is_err());
        assert!(parse(SAMPLE.replace("UTF-8", "ISO-8859-1").as_bytes()).is_err());
    }

    #[test]
    fn session_id_is_redacted_in_debug() {
        let m = parse(SAMPLE.replace("<SessionId xsi:nil=\"true\"/>", "<SessionId>00D5g000000AbCd!SECRET</SessionId>").as_bytes()).unwrap();
        assert_eq!(m.session_id.as_deref(), Some("00D5g000000AbCd!SECRET"));
        assert!(!format!("{m:?}").contains("SECRET"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn never_panics_on_mutations(cut in 0usize..2000, insert in ".{0,12}", drop in 0usize..40) {
            let mut s = SAMPLE.as_bytes().to_vec();
            let at = cut.min(s.len());
            let end = (at + drop).min(s.len());
            s.splice(at..end, insert.bytes());
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse(&bytes);
        }
    }
}
