//! Salesforce record ids: the 15 → 18 character checksum and an id generator with real key prefixes.

/// Alphabet of the 18-char checksum suffix.
const SUFFIX: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
/// Base-62 alphabet in ASCII order, so fixed-width encodings sort like the numbers they encode.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Key prefixes of the objects the simulator knows.
pub mod prefix {
    /// Organization.
    pub const ORG: &str = "00D";
    /// User.
    pub const USER: &str = "005";
    /// Contact.
    pub const CONTACT: &str = "003";
    /// Account.
    pub const ACCOUNT: &str = "001";
    /// Lead.
    pub const LEAD: &str = "00Q";
    /// UserRole.
    pub const ROLE: &str = "00E";
    /// Outbound message action.
    pub const OUTBOUND_ACTION: &str = "04k";
    /// Outbound notification.
    pub const NOTIFICATION: &str = "04l";
    /// Query cursor.
    pub const QUERY_LOCATOR: &str = "01g";
    /// Bulk API 2.0 job.
    pub const BULK_JOB: &str = "750";
}

/// Converts a 15-char id to its 18-char form; returns `None` if `id` is not 15 alphanumeric chars.
pub fn to18(id15: &str) -> Option<String> {
    let bytes = id15.as_bytes();
    if bytes.len() != 15 || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut out = String::with_capacity(18);
    out.push_str(id15);
    for chunk in bytes.chunks(5) {
        let mut v = 0usize;
        for (j, c) in chunk.iter().enumerate() {
            if c.is_ascii_uppercase() {
                v |= 1 << j;
            }
        }
        out.push(SUFFIX[v] as char);
    }
    Some(out)
}

/// Normalizes a 15- or 18-char id to 18 chars, checking the suffix of an 18-char id
/// (case-insensitively, as Salesforce does).
pub fn normalize(id: &str) -> Option<String> {
    match id.len() {
        15 => to18(id),
        18 => {
            let full = to18(&id[..15])?;
            full[15..].eq_ignore_ascii_case(&id[15..]).then_some(full)
        }
        _ => None,
    }
}

/// The 15-char form of an 18-char id (or the id itself).
pub fn to15(id: &str) -> &str {
    id.get(..15).unwrap_or(id)
}

/// Builds an 18-char id from a key prefix, a 2-char pod and a sequence number.
pub fn make(prefix: &str, pod: &str, n: u64) -> String {
    let mut s = String::with_capacity(18);
    s.push_str(prefix);
    s.push_str(pod);
    s.push('0');
    let mut digits = [b'0'; 9];
    let mut v = n;
    for d in digits.iter_mut().rev() {
        *d = BASE62[(v % 62) as usize];
        v /= 62;
    }
    s.extend(digits.iter().map(|&b| b as char));
    // prefix (3) + pod (2) + '0' + 9 digits = 15 alphanumerics
    to18(&s).unwrap_or(s)
}

/// Encodes `n` in base 62 (no padding), for opaque tokens and locators.
pub fn base62(mut n: u64) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut v = Vec::new();
    while n > 0 {
        v.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    v.reverse();
    String::from_utf8_lossy(&v).into_owned()
}

/// Decodes base 62 produced by [`base62`].
pub fn unbase62(s: &str) -> Option<u64> {
    let mut n: u64 = 0;
    for c in s.bytes() {
        let d = BASE62.iter().position(|&b| b == c)? as u64;
        n = n.checked_mul(62)?.checked_add(d)?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_from_salesforce_md() {
        assert_eq!(to18("001M000000qfPyS").as_deref(), Some("001M000000qfPySIAU"));
        assert_eq!(to18("AbCdEfGhIjKlMnO").as_deref(), Some("AbCdEfGhIjKlMnOVKV"));
        assert_eq!(to18("aaaaaaaaaaaaaaa").as_deref(), Some("aaaaaaaaaaaaaaaAAA"));
    }

    #[test]
    fn normalize_checks_suffix() {
        assert_eq!(normalize("001M000000qfPySIAU").as_deref(), Some("001M000000qfPySIAU"));
        assert_eq!(normalize("001M000000qfPySiau").as_deref(), Some("001M000000qfPySIAU"));
        assert_eq!(normalize("001M000000qfPySAAA"), None);
        assert_eq!(normalize("short"), None);
        assert_eq!(normalize("001M000000qfPy!"), None);
    }

    #[test]
    fn generated_ids_sort_and_check() {
        let a = make(prefix::USER, "5g", 61);
        let b = make(prefix::USER, "5g", 62);
        assert!(a < b);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("0055g0"));
        assert_eq!(normalize(&a[..15]).as_deref(), Some(a.as_str()));
        assert_eq!(unbase62(&base62(123_456_789)), Some(123_456_789));
    }
}
