//! Salesforce record ids: 15-char (case-sensitive) and 18-char (case-safe) forms.

/// The 18-char form of a 15- or 18-char Salesforce id; `None` if it is neither.
///
/// The suffix encodes, per 5-char chunk, which characters are upper case.
pub fn to_18(id: &str) -> Option<String> {
    const MAP: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        18 => Some(id.to_string()),
        15 => {
            let mut out = String::with_capacity(18);
            out.push_str(id);
            for chunk in id.as_bytes().chunks(5) {
                let bits = chunk.iter().enumerate().fold(0usize, |acc, (j, b)| if b.is_ascii_uppercase() { acc | (1 << j) } else { acc });
                out.push(MAP[bits] as char);
            }
            Some(out)
        }
        _ => None,
    }
}

/// Whether two ids name the same record, whatever their length.
pub fn same_id(a: &str, b: &str) -> bool {
    match (to_18(a), to_18(b)) {
        (Some(a), Some(b)) => a[..15] == b[..15],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_vectors() {
        assert_eq!(to_18("001M000000qfPyS").as_deref(), Some("001M000000qfPySIAU"));
        assert_eq!(to_18("AbCdEfGhIjKlMnO").as_deref(), Some("AbCdEfGhIjKlMnOVKV"));
        assert_eq!(to_18("aaaaaaaaaaaaaaa").as_deref(), Some("aaaaaaaaaaaaaaaAAA"));
    }

    #[test]
    fn compares_across_lengths_and_rejects_junk() {
        assert!(same_id("001M000000qfPyS", "001M000000qfPySIAU"));
        assert!(!same_id("001M000000qfPyS", "001m000000qfPyS"));
        assert_eq!(to_18("short"), None);
        assert_eq!(to_18("001M000000qfPy!"), None);
    }
}
