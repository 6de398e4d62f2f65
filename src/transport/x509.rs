//! Just enough DER to name the peer of a mutual-TLS connection: the subject and the subject
//! alternative names of a certificate rustls has already verified. Anything this reader does
//! not understand is left out of the names, never an error.

use super::tls::TlsIdentity;

/// One DER element: its tag and contents, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed element's contents.
fn children(mut der: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, body, rest) = element(der)?;
        der = rest;
        Some((tag, body))
    })
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// A dotted OID from its DER contents.
fn oid(body: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut value: u64 = 0;
    for &b in body {
        value = (value << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (value / 40).min(2);
                parts.push(first.to_string());
                parts.push((value - first * 40).to_string());
            } else {
                parts.push(value.to_string());
            }
            value = 0;
        }
    }
    parts.join(".")
}

fn attribute_name(oid_text: &str) -> Option<&'static str> {
    Some(match oid_text {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// A Name (RDN sequence) as `CN=...,O=...`.
fn name(body: &[u8]) -> String {
    let mut parts = Vec::new();
    for (tag, rdn) in children(body) {
        if tag != SET {
            continue;
        }
        for (tag, atv) in children(rdn) {
            if tag != SEQUENCE {
                continue;
            }
            let mut it = children(atv);
            let (Some((OID, type_oid)), Some((_, value))) = (it.next(), it.next()) else { continue };
            let type_oid = oid(type_oid);
            let key = attribute_name(&type_oid).map_or(type_oid.clone(), str::to_owned);
            parts.push(format!("{key}={}", String::from_utf8_lossy(value)));
        }
    }
    parts.join(",")
}

fn ip(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

/// The subject alternative names of a SAN extension's value.
fn sans(value: &[u8]) -> Vec<String> {
    let Some((SEQUENCE, names, _)) = element(value) else { return Vec::new() };
    children(names)
        .filter_map(|(tag, body)| match tag {
            0x81 => Some(format!("email:{}", String::from_utf8_lossy(body))),
            0x82 => Some(format!("DNS:{}", String::from_utf8_lossy(body))),
            0x86 => Some(format!("URI:{}", String::from_utf8_lossy(body))),
            0x87 => ip(body).map(|a| format!("IP:{a}")),
            _ => None,
        })
        .collect()
}

/// The subject and SANs of a DER certificate.
pub(crate) fn identity(der: &[u8]) -> TlsIdentity {
    let mut id = TlsIdentity { certificate_der: der.to_vec(), ..TlsIdentity::default() };
    let Some((SEQUENCE, cert, _)) = element(der) else { return id };
    let Some((SEQUENCE, tbs, _)) = element(cert) else { return id };
    let mut fields = children(tbs).peekable();
    // [0] version, when present.
    if fields.peek().is_some_and(|(tag, _)| *tag == 0xa0) {
        fields.next();
    }
    // serial, signature algorithm, issuer, validity, then the subject.
    let mut fields = fields.skip(4);
    if let Some((SEQUENCE, subject)) = fields.next() {
        id.subject = name(subject);
    }
    for (tag, body) in fields {
        if tag != 0xa3 {
            continue;
        }
        let Some((SEQUENCE, extensions, _)) = element(body) else { continue };
        for (_, ext) in children(extensions) {
            let mut it = children(ext);
            let Some((OID, ext_oid)) = it.next() else { continue };
            if oid(ext_oid) != "2.5.29.17" {
                continue;
            }
            // An optional `critical` BOOLEAN, then the OCTET STRING holding the value.
            if let Some((_, value)) = it.find(|(tag, _)| *tag == 0x04) {
                id.sans = sans(value);
            }
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_der_gives_empty_names_never_a_panic() {
        for der in [&[][..], &[0x30], &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], &[0x30, 0x03, 0x30, 0x01, 0x02], &[0xff; 64]] {
            let id = identity(der);
            assert_eq!((id.subject.as_str(), id.sans.len()), ("", 0));
        }
        // Every prefix of a real-looking structure.
        let name = [0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, b'a', b'b', b'c'];
        assert_eq!(super::name(&name[2..]), "CN=abc");
        for n in 0..name.len() {
            let _ = super::name(&name[..n]);
        }
    }

    #[test]
    fn oids_read_as_dotted_numbers() {
        assert_eq!(oid(&[0x55, 0x1d, 0x11]), "2.5.29.17");
        assert_eq!(oid(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19]), "0.9.2342.19200300.100.1.25");
        assert_eq!(oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]), "1.2.840.113549.1.9.1");
    }
}
