//! RFC 3339 timestamps (Intel collateral `issueDate`/`nextUpdate`) to unix
//! seconds and back, for validity windows and display.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Parse an RFC 3339 timestamp to unix seconds; `None` if invalid or before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// Format unix seconds as RFC 3339 (UTC); falls back to the number.
pub fn format_unix(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        assert_eq!(parse_rfc3339("2025-06-19T10:32:27Z"), Some(1_750_329_147));
        assert_eq!(format_unix(1_750_329_147), "2025-06-19T10:32:27Z");
        assert_eq!(parse_rfc3339("nope"), None);
    }
}
