//! Exact decimal money with its currency. Every amount is rounded to its currency's minor unit
//! (half away from zero, as shops and accountants round) at the step that produces it, so a
//! statement's lines add up to its totals.

use std::fmt;

use nexus_kernel::{Currency, Error};
use rust_decimal::{Decimal, RoundingStrategy};

/// An amount of money: a decimal value in a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    pub value: Decimal,
    pub currency: Currency,
}

/// The largest amount accepted anywhere (a price, an order total): far above any real order,
/// far below where decimal arithmetic could overflow.
pub fn max_value() -> Decimal {
    Decimal::new(1_000_000_000_000, 0)
}

/// `value` rounded to `currency`'s minor unit (2 digits for USD, 0 for JPY).
pub fn round(value: Decimal, currency: Currency) -> Decimal {
    value.round_dp_with_strategy(u32::from(currency.minor_digits()), RoundingStrategy::MidpointAwayFromZero)
}

/// `value` as text with exactly its currency's minor digits ("13.99", "1200", "1.250").
pub fn text(value: Decimal, currency: Currency) -> String {
    let mut v = round(value, currency);
    v.rescale(u32::from(currency.minor_digits()));
    v.to_string()
}

impl Amount {
    /// An amount rounded to its currency's minor unit.
    pub fn new(value: Decimal, currency: Currency) -> Amount {
        Amount { value: round(value, currency), currency }
    }

    pub fn zero(currency: Currency) -> Amount {
        Amount { value: Decimal::ZERO, currency }
    }

    /// Parses a decimal string ("12.99") in `currency`: at most the currency's minor digits, not
    /// negative, at most [`max_value`]. `field` names the input in the error.
    pub fn parse(value: &str, currency: &str, field: &str) -> Result<Amount, Error> {
        let currency: Currency = currency.parse().map_err(|e: Error| e.with_violation(field, "currency"))?;
        let bad =
            || Error::invalid("commerce.amount_invalid").with_param("field", field).with_violation(field, "invalid");
        let value = value.trim();
        // Plain decimal notation only: no exponent, sign or separators.
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') || value.len() > 32 {
            return Err(bad());
        }
        let v: Decimal = value.parse().map_err(|_| bad())?;
        if v.is_sign_negative() || v > max_value() || v.scale() > u32::from(currency.minor_digits()) {
            return Err(bad());
        }
        Ok(Amount { value: v, currency })
    }

    /// The sum, in the same currency.
    pub fn plus(self, other: Amount) -> Result<Amount, Error> {
        self.same(other)?;
        Ok(Amount { value: self.value + other.value, currency: self.currency })
    }

    /// The difference (may be negative: a loss), in the same currency.
    pub fn minus(self, other: Amount) -> Result<Amount, Error> {
        self.same(other)?;
        Ok(Amount { value: self.value - other.value, currency: self.currency })
    }

    /// `percent` % of the amount, rounded.
    pub fn percent(self, percent: Decimal) -> Amount {
        Amount::new(self.value * percent / Decimal::ONE_HUNDRED, self.currency)
    }

    fn same(self, other: Amount) -> Result<(), Error> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(Error::invalid("commerce.currency_mismatch")
                .with_param("expected", self.currency.code())
                .with_param("currency", other.currency.code()))
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn rounds_half_away_from_zero_to_the_minor_unit() {
        assert_eq!(Amount::new(d("2.345"), Currency::USD).value, d("2.35"));
        assert_eq!(Amount::new(d("2.344999"), Currency::USD).value, d("2.34"));
        assert_eq!(Amount::new(d("-2.345"), Currency::USD).value, d("-2.35"));
        let jpy: Currency = "JPY".parse().unwrap();
        assert_eq!(Amount::new(d("1234.5"), jpy).value, d("1235"));
        let kwd: Currency = "KWD".parse().unwrap();
        assert_eq!(Amount::new(d("1.23456"), kwd).value, d("1.235"));
    }

    #[test]
    fn parsing_refuses_what_is_not_money() {
        assert_eq!(Amount::parse("12.99", "USD", "price").unwrap().value, d("12.99"));
        for bad in ["-1", "1.999", "abc", "", "1e3", "99999999999999"] {
            let e = Amount::parse(bad, "USD", "price").unwrap_err();
            assert_eq!(e.code(), "commerce.amount_invalid", "{bad}");
        }
        assert_eq!(Amount::parse("1", "XXX", "price").unwrap_err().code(), "money.unsupported_currency");
        assert_eq!(Amount::parse("1.5", "JPY", "price").unwrap_err().code(), "commerce.amount_invalid");
    }

    #[test]
    fn sums_need_one_currency() {
        let a = Amount::new(d("1.10"), Currency::USD);
        let b = Amount::new(d("2.25"), Currency::USD);
        assert_eq!(a.plus(b).unwrap().value, d("3.35"));
        assert_eq!(a.minus(b).unwrap().value, d("-1.15"));
        let e = a.plus(Amount::new(d("1"), Currency::EUR)).unwrap_err();
        assert_eq!(e.code(), "commerce.currency_mismatch");
        assert_eq!(Amount::new(d("19.99"), Currency::USD).percent(d("2.9")).value, d("0.58"));
    }
}
