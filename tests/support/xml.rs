//! XML in tests, with quick-xml: documents the tests write (CIBs, libvirt
//! domains; the writer escapes every value), and the attributes and
//! elements of what they read. Never `format!` or string splitting.

use std::io;

use quick_xml::events::{BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

/// The writer of [`document`].
pub type XmlWriter = Writer<Vec<u8>>;

/// What writes the content of an element (`<devices>` of a domain).
pub type Content<'a> = &'a dyn Fn(&mut XmlWriter) -> io::Result<()>;

/// The document `body` writes (into memory: it cannot fail), indented by
/// two spaces when `indent`, ending in a newline when `indent`.
pub fn document(indent: bool, body: impl FnOnce(&mut XmlWriter) -> io::Result<()>) -> String {
    let mut w = if indent {
        Writer::new_with_indent(Vec::new(), b' ', 2)
    } else {
        Writer::new(Vec::new())
    };
    body(&mut w).expect("writing XML into memory");
    let mut xml = String::from_utf8(w.into_inner()).expect("UTF-8 XML");
    if indent {
        xml.push('\n');
    }
    xml
}

/// `<tag a="v".../>`.
pub fn empty<W: io::Write>(w: &mut Writer<W>, tag: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
    w.create_element(tag)
        .with_attributes(attrs.iter().copied())
        .write_empty()?;
    Ok(())
}

/// `<tag a="v"...>text</tag>`.
pub fn text<W: io::Write>(
    w: &mut Writer<W>,
    tag: &str,
    attrs: &[(&str, &str)],
    text: &str,
) -> io::Result<()> {
    w.create_element(tag)
        .with_attributes(attrs.iter().copied())
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// Attributes of an element, as owned pairs.
pub fn attrs(e: &BytesStart) -> Vec<(String, String)> {
    e.attributes()
        .map(|a| {
            let a = a.unwrap();
            (
                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                a.unescape_value().unwrap().into_owned(),
            )
        })
        .collect()
}

/// The value of attribute `key`.
pub fn get<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The attributes of every element named `tag` in `xml`, in document order.
#[track_caller]
pub fn elements(xml: &str, tag: &str) -> Vec<Vec<(String, String)>> {
    let mut reader = Reader::from_str(xml);
    let mut found = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.name().as_ref() == tag.as_bytes() => {
                found.push(attrs(&e))
            }
            Ok(Event::Eof) => return found,
            Ok(_) => {}
            Err(e) => panic!("not well-formed XML ({e}):\n{xml}"),
        }
    }
}
