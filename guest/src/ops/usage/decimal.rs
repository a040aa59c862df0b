//! Exact decimal money: parsed from the JSON number's own text, summed without rounding, printed
//! as a plain decimal (no exponent). A float never holds an amount (docs/cloudpe-api.md, "Usage").

use std::fmt;

/// The most digits after the point an amount may have.
const MAX_SCALE: u32 = 30;

/// `units / 10^scale`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decimal {
    units: i128,
    scale: u32,
}

impl Decimal {
    /// Parses a JSON number's text (`12`, `-0.5`, `1.25E-3`); `None` for anything else, or an
    /// amount too precise or too large to hold exactly.
    pub fn parse(text: &str) -> Option<Decimal> {
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], text[at + 1..].strip_prefix('+').unwrap_or(&text[at + 1..]).parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (negative, digits) = match mantissa.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mantissa),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        if digits.contains('.') && fraction.is_empty() {
            return None;
        }
        let mut units: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            units = units.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        let mut scale = i64::try_from(fraction.len()).ok()? - i64::from(exponent);
        while scale < 0 {
            units = units.checked_mul(10)?;
            scale += 1;
        }
        let mut d = Decimal { units: if negative { -units } else { units }, scale: u32::try_from(scale).ok()? };
        d.trim();
        (d.scale <= MAX_SCALE).then_some(d)
    }

    /// The exact sum, `None` on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let a = self.units.checked_mul(10i128.checked_pow(scale - self.scale)?)?;
        let b = other.units.checked_mul(10i128.checked_pow(scale - other.scale)?)?;
        let mut d = Decimal { units: a.checked_add(b)?, scale };
        d.trim();
        Some(d)
    }

    /// Drops trailing zeros after the point.
    fn trim(&mut self) {
        while self.scale > 0 && self.units % 10 == 0 {
            self.units /= 10;
            self.scale -= 1;
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.units.unsigned_abs().to_string();
        let sign = if self.units < 0 { "-" } else { "" };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).unwrap_or_else(|| panic!("{text}"))
    }

    #[test]
    fn numbers_are_read_and_printed_exactly() {
        for (text, shown) in [
            ("0", "0"),
            ("12", "12"),
            ("0.1234", "0.1234"),
            ("-0.5", "-0.5"),
            ("1.50", "1.5"),
            ("1.25E-3", "0.00125"),
            ("2e2", "200"),
            ("0.000000000000000000000000000001", "0.000000000000000000000000000001"),
            ("-0.0", "0"),
        ] {
            assert_eq!(d(text).to_string(), shown, "{text}");
        }
        for bad in ["", "-", "1.", ".5", "1e", "abc", "1.2.3", "0x10", "1e99999", "+1", "1,5"] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sums_are_exact_where_floats_are_not() {
        let sum = d("0.1").checked_add(d("0.2")).unwrap();
        assert_eq!(sum.to_string(), "0.3");
        assert_ne!(0.1f64 + 0.2, 0.3);
        let many = (0..1000).fold(Decimal::default(), |acc, _| acc.checked_add(d("0.0001")).unwrap());
        assert_eq!(many.to_string(), "0.1");
        assert_eq!(d("1.005").checked_add(d("-1.005")).unwrap().to_string(), "0");
        assert_eq!(d("99999999999999.99").checked_add(d("0.01")).unwrap().to_string(), "100000000000000");
    }
}
