//! Reading XML in tests: the attributes of an element, and the elements of
//! a document by name (quick-xml, never string splitting).

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

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
