//! Money in integer minor units with an ISO-4217 currency, and credits. No floats anywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An ISO-4217 alphabetic code, upper case. Only currencies we can price in are accepted, so the
/// number of minor-unit digits is always known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// (code, minor-unit digits) of the currencies NexusOne prices and pays out in.
const CURRENCIES: &[(&str, u8)] = &[
    ("USD", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("BRL", 2),
    ("MXN", 2),
    ("ARS", 2),
    ("COP", 2),
    ("CLP", 0),
    ("ILS", 2),
    ("AED", 2),
    ("SAR", 2),
    ("EGP", 2),
    ("JPY", 0),
    ("CAD", 2),
    ("AUD", 2),
    ("KWD", 3),
    ("BHD", 3),
];

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn code(&self) -> &str {
        // Constructed only from ASCII codes in CURRENCIES.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (2 for USD, 0 for JPY, 3 for KWD).
    pub fn minor_digits(&self) -> u8 {
        CURRENCIES.iter().find(|(c, _)| c.as_bytes() == self.0).map_or(2, |(_, d)| *d)
    }
}

impl FromStr for Currency {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == s)
            .map(|(c, _)| {
                let b = c.as_bytes();
                Currency([b[0], b[1], b[2]])
            })
            .ok_or_else(|| Error::invalid("money.unsupported_currency").with_param("currency", s))
    }
}

impl TryFrom<String> for Currency {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(amount_minor: i64, currency: Currency) -> Self {
        Self { amount_minor, currency }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, Error> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_add(other.amount_minor)
            .map(|a| Money::new(a, self.currency))
            .ok_or_else(|| Error::invalid("money.overflow"))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, Error> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_sub(other.amount_minor)
            .map(|a| Money::new(a, self.currency))
            .ok_or_else(|| Error::invalid("money.overflow"))
    }

    /// Multiplies by a ratio `num/den`, rounding half away from zero in integer arithmetic (used
    /// for proration and commissions).
    pub fn mul_ratio(self, num: i64, den: i64) -> Result<Money, Error> {
        if den == 0 {
            return Err(Error::invalid("money.division_by_zero"));
        }
        let product = i128::from(self.amount_minor) * i128::from(num);
        let den = i128::from(den);
        let q = product / den;
        let r = product % den;
        let rounded = if 2 * r.abs() >= den.abs() { q + product.signum() * den.signum() } else { q };
        i64::try_from(rounded).map(|a| Money::new(a, self.currency)).map_err(|_| Error::invalid("money.overflow"))
    }

    fn same_currency(&self, other: Money) -> Result<(), Error> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(Error::invalid("money.currency_mismatch")
                .with_param("left", self.currency.code())
                .with_param("right", other.currency.code()))
        }
    }
}

impl fmt::Display for Money {
    /// Plain `12.34 USD`; localized formatting lives in the i18n crate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = u32::from(self.currency.minor_digits());
        let scale = 10i64.pow(digits);
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        let (int, frac) = (abs / scale as u64, abs % scale as u64);
        if digits == 0 {
            write!(f, "{sign}{int} {}", self.currency)
        } else {
            write!(f, "{sign}{int}.{frac:0width$} {}", self.currency, width = digits as usize)
        }
    }
}

/// A non-negative number of credits. Arithmetic that would go below zero fails instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(try_from = "i64", into = "i64")]
pub struct Credits(i64);

impl Credits {
    pub const ZERO: Credits = Credits(0);

    pub fn new(n: i64) -> Result<Self, Error> {
        if n < 0 { Err(Error::invalid("credits.negative")) } else { Ok(Self(n)) }
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Credits) -> Result<Credits, Error> {
        self.0.checked_add(other.0).map(Credits).ok_or_else(|| Error::invalid("credits.overflow"))
    }

    pub fn checked_sub(self, other: Credits) -> Result<Credits, Error> {
        match self.0.checked_sub(other.0) {
            Some(n) if n >= 0 => Ok(Credits(n)),
            _ => Err(Error::new(crate::ErrorKind::FailedPrecondition, "subscriptions.insufficient_credits")),
        }
    }
}

impl TryFrom<i64> for Credits {
    type Error = Error;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        Credits::new(n)
    }
}

impl From<Credits> for i64 {
    fn from(c: Credits) -> i64 {
        c.0
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_are_validated() {
        assert_eq!("USD".parse::<Currency>().unwrap(), Currency::USD);
        assert!("usd".parse::<Currency>().is_err());
        assert!("XYZ".parse::<Currency>().is_err());
        assert_eq!("JPY".parse::<Currency>().unwrap().minor_digits(), 0);
        assert!(serde_json::from_str::<Currency>("\"EURO\"").is_err());
    }

    #[test]
    fn money_arithmetic_refuses_mixed_currencies_and_overflow() {
        let a = Money::new(9700, Currency::USD);
        let b = Money::new(300, Currency::USD);
        assert_eq!(a.checked_add(b).unwrap().amount_minor, 10_000);
        assert!(a.checked_add(Money::new(1, Currency::EUR)).is_err());
        assert!(Money::new(i64::MAX, Currency::USD).checked_add(b).is_err());
    }

    #[test]
    fn ratio_rounds_half_away_from_zero() {
        let m = Money::new(9700, Currency::USD);
        // 15 of 30 days of $97.00
        assert_eq!(m.mul_ratio(15, 30).unwrap().amount_minor, 4850);
        assert_eq!(Money::new(5, Currency::USD).mul_ratio(1, 2).unwrap().amount_minor, 3);
        assert_eq!(Money::new(-5, Currency::USD).mul_ratio(1, 2).unwrap().amount_minor, -3);
        assert_eq!(Money::new(10, Currency::USD).mul_ratio(1, 3).unwrap().amount_minor, 3);
        assert!(m.mul_ratio(1, 0).is_err());
    }

    #[test]
    fn display_uses_minor_digits() {
        assert_eq!(Money::new(9700, Currency::USD).to_string(), "97.00 USD");
        assert_eq!(Money::new(-5, Currency::USD).to_string(), "-0.05 USD");
        assert_eq!(Money::new(500, "JPY".parse().unwrap()).to_string(), "500 JPY");
    }

    #[test]
    fn credits_never_go_negative() {
        let c = Credits::new(5).unwrap();
        assert!(Credits::new(-1).is_err());
        assert_eq!(c.checked_sub(Credits::new(5).unwrap()).unwrap(), Credits::ZERO);
        let err = c.checked_sub(Credits::new(6).unwrap()).unwrap_err();
        assert_eq!(err.code(), "subscriptions.insufficient_credits");
        assert!(serde_json::from_str::<Credits>("-3").is_err());
    }
}
