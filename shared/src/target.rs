//! Strict checks on a link's target: a relative path (and query) under the platform, and
//! nothing that a browser, a proxy or the platform could read as another place.

use crate::links::MAX_TARGET_LEN;

/// Why a target was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("target is empty or longer than {MAX_TARGET_LEN} bytes")]
    Length,
    #[error("target must start with a single `/`")]
    NotRelative,
    #[error("target holds a character outside the allowed set")]
    Character,
    #[error("target holds `//`")]
    DoubleSlash,
    #[error("target holds a `.` or `..` path segment")]
    DotSegment,
    #[error("target path holds a `:`")]
    Colon,
    #[error("target holds a bad or dangerous percent-escape")]
    Escape,
    #[error("target holds more than one `#`")]
    Fragment,
}

/// Checks a target. Accepted: `/path/segments?query#fragment` where
///
/// - it starts with exactly one `/`, holds no `//` anywhere and no `\`;
/// - every byte is an ASCII letter, digit or one of `-._~/?=&%+,;:@!#`, so no control,
///   space, quote, angle bracket or non-ASCII character (no Unicode look-alikes);
/// - each `%` starts a two-digit escape of a printable ASCII byte other than `/`, `\`, `.`,
///   `%` (no encoded separators, dot segments or double encoding);
/// - no path segment is `.` or `..`, and the path holds no `:`.
pub fn validate(target: &str) -> Result<(), TargetError> {
    let bytes = target.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_TARGET_LEN {
        return Err(TargetError::Length);
    }
    if bytes[0] != b'/' || bytes.get(1).is_some_and(|b| *b == b'/' || *b == b'\\') {
        return Err(TargetError::NotRelative);
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !allowed(b) {
            return Err(TargetError::Character);
        }
        if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
            return Err(TargetError::DoubleSlash);
        }
        if b == b'%' {
            let decoded = match (bytes.get(i + 1).and_then(hex), bytes.get(i + 2).and_then(hex)) {
                (Some(hi), Some(lo)) => hi << 4 | lo,
                _ => return Err(TargetError::Escape),
            };
            if !(0x20..0x7F).contains(&decoded) || matches!(decoded, b'/' | b'\\' | b'.' | b'%') {
                return Err(TargetError::Escape);
            }
            i += 3;
            continue;
        }
        i += 1;
    }
    if target.matches('#').count() > 1 {
        return Err(TargetError::Fragment);
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if path.contains(':') {
        return Err(TargetError::Colon);
    }
    if path.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(TargetError::DotSegment);
    }
    Ok(())
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~/?=&%+,;:@!#".contains(&b)
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_targets_pass() {
        for t in [
            "/",
            "/surveys/onboarding",
            "/surveys/onboarding/",
            "/q/123?src=email&lang=en",
            "/app#/questions/7",
            "/search?q=a%20b",
            "/a-b_c.d~e/f.html",
            "/r?at=10:30",
        ] {
            assert_eq!(validate(t), Ok(()), "{t}");
        }
        // Non-ASCII escapes are refused (strict): no encoded Unicode look-alikes.
        assert_eq!(validate("/search?q=caf%C3%A9"), Err(TargetError::Escape));
    }
}
