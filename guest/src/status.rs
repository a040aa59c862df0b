//! CloudPe account states and the table that maps them to HostBill statuses
//! (docs/cloudpe-api.md, "Statuses").

use std::borrow::Cow;

use crate::wit::HostbillStatus;

/// CloudPe `status` value meaning ACTIVE.
pub const ACTIVE: i64 = 1;
/// CloudPe `status` value meaning INACTIVE (environments stopped).
pub const INACTIVE: i64 = 2;
/// CloudPe `status` value meaning DESTROY (being destroyed).
pub const DESTROY: i64 = 3;
/// CloudPe `status` value meaning DELETED.
pub const DELETED: i64 = 4;

/// Human name of a CloudPe status value, e.g. `2 (inactive)` (a constant for the known ones:
/// a sync describes thousands).
pub fn describe(status: i64) -> Cow<'static, str> {
    Cow::Borrowed(match status {
        ACTIVE => "1 (active)",
        INACTIVE => "2 (inactive)",
        DESTROY => "3 (being destroyed)",
        DELETED => "4 (deleted)",
        _ => return Cow::Owned(format!("{status} (unknown)")),
    })
}

/// The HostBill status a CloudPe account corresponds to, or `None` for a status value this
/// module does not know (the caller must then change nothing).
pub fn hostbill_status(status: i64, is_enabled: Option<bool>) -> Option<HostbillStatus> {
    match (status, is_enabled) {
        (ACTIVE, Some(true) | None) => Some(HostbillStatus::Active),
        (ACTIVE, Some(false)) => Some(HostbillStatus::Suspended),
        (INACTIVE, _) => Some(HostbillStatus::Suspended),
        (DESTROY | DELETED, _) => Some(HostbillStatus::Terminated),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostbillStatus::*;

    #[test]
    fn mapping_table() {
        let cases = [
            (1, Some(true), Some(Active)),
            (1, None, Some(Active)),
            (1, Some(false), Some(Suspended)),
            (2, Some(true), Some(Suspended)),
            (2, Some(false), Some(Suspended)),
            (2, None, Some(Suspended)),
            (3, Some(true), Some(Terminated)),
            (4, None, Some(Terminated)),
            (4, Some(false), Some(Terminated)),
            (0, Some(true), None),
            (5, Some(true), None),
            (-1, None, None),
        ];
        for (status, enabled, expected) in cases {
            assert_eq!(hostbill_status(status, enabled), expected, "status {status}, isEnabled {enabled:?}");
        }
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe(1), "1 (active)");
        assert_eq!(describe(2), "2 (inactive)");
        assert_eq!(describe(3), "3 (being destroyed)");
        assert_eq!(describe(4), "4 (deleted)");
        assert_eq!(describe(9), "9 (unknown)");
    }
}
