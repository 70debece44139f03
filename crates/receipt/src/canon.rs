//! The deterministic binary encoding that receipts and digests are computed over.
//!
//! JSON is not canonical (key order, whitespace, number spelling), so signatures
//! are never computed over JSON. Instead every signed or hashed object is fed,
//! field by field in a fixed order, to this encoder:
//!
//! ```text
//! encoding := domain || field*
//! domain   := u32be(len) || utf8 bytes          (e.g. "proofmesh/receipt/v1")
//! field    := u32be(len) || name || value
//! value    := 0x01 || u32be(len) || utf8 bytes  (string)
//!           | 0x02 || u64be                     (unsigned integer)
//!           | 0x03 || u32be(count) || (u32be(len) || utf8 bytes)*   (list of strings)
//!           | 0x04 || u32be(count) || u32be*   (list of u32)
//! ```
//!
//! Strings are encoded exactly as they appear in the JSON form, so changing the
//! spelling of a value (hex case, say) changes the encoding and breaks the
//! signature. The format is specified in `docs/RECEIPTS.md`.

/// Streaming writer for the canonical encoding.
#[derive(Debug, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// Starts an encoding under a domain-separation label.
    pub fn new(domain: &str) -> Self {
        let mut e = Encoder {
            buf: Vec::with_capacity(512),
        };
        e.raw_str(domain);
        e
    }

    fn raw_str(&mut self, s: &str) {
        self.raw_bytes(s.as_bytes());
    }

    fn raw_bytes(&mut self, b: &[u8]) {
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(b);
    }

    /// Appends a string field.
    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        self.raw_str(name);
        self.buf.push(0x01);
        self.raw_str(value);
        self
    }

    /// Appends an unsigned integer field.
    pub fn u64(&mut self, name: &str, value: u64) -> &mut Self {
        self.raw_str(name);
        self.buf.push(0x02);
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a list-of-strings field.
    pub fn strs(&mut self, name: &str, values: &[String]) -> &mut Self {
        self.raw_str(name);
        self.buf.push(0x03);
        let n = u32::try_from(values.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&n.to_be_bytes());
        for v in values {
            self.raw_str(v);
        }
        self
    }

    /// Appends a list-of-u32 field.
    pub fn u32s(&mut self, name: &str, values: &[u32]) -> &mut Self {
        self.raw_str(name);
        self.buf.push(0x04);
        let n = u32::try_from(values.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&n.to_be_bytes());
        for v in values {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        self
    }

    /// Appends raw bytes as a string-typed field (used for signatures inside countersignatures).
    pub fn bytes(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.raw_str(name);
        self.buf.push(0x01);
        self.raw_bytes(value);
        self
    }

    /// The finished encoding.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = Encoder::new("d");
        a.str("x", "ab").str("y", "c");
        let mut b = Encoder::new("d");
        b.str("x", "a").str("y", "bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn domain_separates() {
        let mut a = Encoder::new("proofmesh/a");
        a.u64("n", 1);
        let mut b = Encoder::new("proofmesh/b");
        b.u64("n", 1);
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn known_layout() {
        let mut e = Encoder::new("d");
        e.u64("n", 258);
        let got = e.finish();
        let want: Vec<u8> = [
            &[0, 0, 0, 1, b'd'][..],
            &[0, 0, 0, 1, b'n', 0x02],
            &[0, 0, 0, 0, 0, 0, 1, 2],
        ]
        .concat();
        assert_eq!(got, want);
    }
}
