//! DynamoDB's size accounting of an [`Item`], shared by every `Store` backend so that the
//! embedded store refuses exactly what DynamoDB would.
//!
//! An item is stored as the attributes [`attr`] names (the DynamoDB backend's table layout).
//! DynamoDB counts an item as the sum, over its attributes, of the attribute name's UTF-8
//! bytes plus the value's size: a string's UTF-8 bytes; a number's "1 byte per two
//! significant digits, plus 1 byte" (leading and trailing zeros trimmed). Source: "DynamoDB
//! item sizes and formats",
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>.
//!
//! Numbers are counted in the base-100 digit pairs DynamoDB stores them in (so `170` is
//! `01|70`, 3 bytes), which is never less than the documented estimate. The version `v` is
//! counted at its widest (a `u64`, 11 bytes): the version a write stores is known only inside
//! the write, and counting the widest keeps every backend's answer the same and never below
//! DynamoDB's.

use super::store::Item;

/// The attribute names an item is stored under.
pub mod attr {
    /// Partition key (S).
    pub const PK: &str = "pk";
    /// Sort key (S).
    pub const SK: &str = "sk";
    /// Secondary index partition key (S).
    pub const GSI1PK: &str = "gsi1pk";
    /// Secondary index sort key (S).
    pub const GSI1SK: &str = "gsi1sk";
    /// Expiry, epoch seconds (N): DynamoDB's TTL attribute.
    pub const TTL: &str = "ttl";
    /// Version (N).
    pub const VERSION: &str = "v";
    /// The JSON body (S).
    pub const BODY: &str = "d";
}

/// The size DynamoDB counts for a number attribute's value.
pub fn number_size(n: i128) -> usize {
    let digits = n.unsigned_abs().to_string();
    // Pad to whole pairs from the units digit, then trim zero pairs at both ends.
    let padded = if digits.len() % 2 == 1 { format!("0{digits}") } else { digits };
    let pairs: Vec<&[u8]> = padded.as_bytes().chunks(2).collect();
    let first = pairs.iter().position(|p| *p != b"00");
    let last = pairs.iter().rposition(|p| *p != b"00");
    let significant = match (first, last) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    };
    // The exponent byte, and one more for a negative number's terminator.
    significant + 1 + usize::from(n < 0)
}

/// The size DynamoDB counts for `item` as the DynamoDB backend stores it.
pub fn item_size(item: &Item) -> usize {
    let string = |name: &str, value: &str| name.len() + value.len();
    let number = |name: &str, value: i128| name.len() + number_size(value);
    let mut size = string(attr::PK, &item.pk)
        + string(attr::SK, &item.sk)
        + string(attr::BODY, &item.body)
        + number(attr::VERSION, i128::from(u64::MAX));
    if let Some(t) = item.expires_at {
        size += number(attr::TTL, i128::from(t));
    }
    if let Some((gpk, gsk)) = &item.gsi1 {
        size += string(attr::GSI1PK, gpk) + string(attr::GSI1SK, gsk);
    }
    size
}

/// The size a key alone counts (a delete's or a condition check's share of a transaction).
pub fn key_size(pk: &str, sk: &str) -> usize {
    attr::PK.len() + pk.len() + attr::SK.len() + sk.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_count_their_significant_digit_pairs() {
        assert_eq!(number_size(0), 1);
        assert_eq!(number_size(7), 2);
        assert_eq!(number_size(17), 2);
        assert_eq!(number_size(170), 3, "01|70");
        assert_eq!(number_size(1_700_000_000), 2, "17|00|00|00|00: trailing zero pairs are trimmed");
        assert_eq!(number_size(1_234_567_890), 6);
        assert_eq!(number_size(i128::from(u64::MAX)), 11, "20 digits");
        assert_eq!(number_size(-5), 3);
    }

    #[test]
    fn an_item_counts_names_and_values() {
        let item = Item::new("ab", "c", "{}");
        // pk+ab, sk+c, d+{}, v at its widest.
        assert_eq!(item_size(&item), (2 + 2) + (2 + 1) + (1 + 2) + (1 + 11));
        let full = item.clone().with_gsi1("x", "yz").with_expiry(1_700_000_000);
        assert_eq!(item_size(&full), item_size(&item) + (3 + 2) + (6 + 1) + (6 + 2));
        assert_eq!(item_size(&Item::new("é", "", "✓")), (2 + 2) + 2 + (1 + 3) + 12, "UTF-8 bytes, not chars");
    }
}
