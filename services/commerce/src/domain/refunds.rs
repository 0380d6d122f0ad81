//! Refunds of (part of) an order: what a request refunds (an amount, or some of the order's
//! lines), never more than remains, and the share of the sale's profit and commissions it takes
//! back — proportional to the amount, rounded to the currency's minor unit, the last refund
//! taking exactly what is left so the reversals add up to the figures they reverse.

use nexus_kernel::{Currency, Error, ErrorKind};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::{self, Amount};
use super::orders::Line;

/// One line of the order refunded: its index in the order's lines, and how many units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    pub line: usize,
    pub quantity: u32,
}

/// A refund already holding part of the order (pending or completed).
#[derive(Debug, Clone, PartialEq)]
pub struct Prior {
    pub amount: Decimal,
    pub lines: Vec<RefundLine>,
}

fn invalid(field: &str) -> Error {
    Error::invalid("commerce.refund_invalid").with_param("field", field).with_violation(field, "invalid")
}

/// What a request refunds: `amount` (a decimal in the order's currency) or `lines`, exactly one.
/// A line is refunded at its unit price; each line only as many units as were bought and not
/// refunded yet; the amount never more than the order's total less `prior` refunds.
pub fn plan(
    total: Decimal,
    currency: Currency,
    order_lines: &[Line],
    prior: &[Prior],
    amount: &str,
    lines: &[RefundLine],
) -> Result<(Decimal, Vec<RefundLine>), Error> {
    let amount = amount.trim();
    let value = match (amount.is_empty(), lines.is_empty()) {
        (false, true) => {
            let a = Amount::parse(amount, currency.code(), "amount").map_err(|_| invalid("amount"))?;
            a.value
        }
        (true, false) => {
            if lines.len() > order_lines.len() {
                return Err(invalid("lines"));
            }
            let mut sum = Decimal::ZERO;
            for (i, l) in lines.iter().enumerate() {
                let Some(line) = order_lines.get(l.line) else { return Err(invalid("lines.line")) };
                if l.quantity == 0 || lines[..i].iter().any(|o| o.line == l.line) {
                    return Err(invalid("lines.quantity"));
                }
                let refunded: u32 =
                    prior.iter().flat_map(|p| &p.lines).filter(|p| p.line == l.line).map(|p| p.quantity).sum();
                if l.quantity > line.quantity.saturating_sub(refunded) {
                    return Err(invalid("lines.quantity"));
                }
                sum += line.price * Decimal::from(l.quantity);
            }
            money::round(sum, currency)
        }
        _ => return Err(invalid(if amount.is_empty() { "amount" } else { "lines" })),
    };
    if value <= Decimal::ZERO {
        return Err(invalid("amount"));
    }
    let remaining = remaining(total, prior);
    if value > remaining {
        return Err(Error::new(ErrorKind::Conflict, "commerce.refund_exceeds_remaining")
            .with_param("remaining", money::text(remaining, currency))
            .with_param("currency", currency.code()));
    }
    Ok((value, lines.to_vec()))
}

/// What remains refundable of an order of `total` after `prior` refunds.
pub fn remaining(total: Decimal, prior: &[Prior]) -> Decimal {
    (total - prior.iter().map(|p| p.amount).sum::<Decimal>()).max(Decimal::ZERO)
}

/// The share of `figure` a refund of `amount` takes back when `before` of the order's `total`
/// was refunded already and `reversed` of the figure taken back: proportional and rounded to
/// `currency`, or exactly what is left when the refund completes the order.
pub fn share(
    figure: Decimal,
    reversed: Decimal,
    (before, amount, total): (Decimal, Decimal, Decimal),
    currency: Currency,
) -> Decimal {
    if total <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    if before + amount >= total {
        return figure - reversed;
    }
    money::round(figure * amount / total, currency)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn line(price: &str, quantity: u32) -> Line {
        Line {
            variant_id: None,
            sku: "SKU".into(),
            quantity,
            price: d(price),
            title: String::new(),
            vendor: String::new(),
            store_line_id: "1".into(),
        }
    }

    #[test]
    fn an_amount_or_lines_never_more_than_remains() {
        let usd: Currency = "USD".parse().unwrap();
        let lines = [line("19.99", 2), line("5.00", 1)];
        let total = d("49.97");
        assert_eq!(plan(total, usd, &lines, &[], "10.00", &[]).unwrap().0, d("10.00"));
        let by_line = plan(total, usd, &lines, &[], "", &[RefundLine { line: 0, quantity: 1 }]).unwrap();
        assert_eq!(by_line.0, d("19.99"));
        let prior = [Prior { amount: d("19.99"), lines: vec![RefundLine { line: 0, quantity: 1 }] }];
        // One unit of line 0 is left; two are not.
        assert!(plan(total, usd, &lines, &prior, "", &[RefundLine { line: 0, quantity: 1 }]).is_ok());
        let e = plan(total, usd, &lines, &prior, "", &[RefundLine { line: 0, quantity: 2 }]).unwrap_err();
        assert_eq!(e.code(), "commerce.refund_invalid");
        let e = plan(total, usd, &lines, &prior, "29.99", &[]).unwrap_err();
        assert_eq!((e.code(), e.kind()), ("commerce.refund_exceeds_remaining", ErrorKind::Conflict));
        assert_eq!(plan(total, usd, &lines, &prior, "29.98", &[]).unwrap().0, d("29.98"));
        for (amount, ls) in [
            ("", vec![]),
            ("1.00", vec![RefundLine { line: 0, quantity: 1 }]),
            ("0", vec![]),
            ("-1", vec![]),
            ("1.001", vec![]),
            ("ten", vec![]),
            ("", vec![RefundLine { line: 2, quantity: 1 }]),
            ("", vec![RefundLine { line: 1, quantity: 0 }]),
            ("", vec![RefundLine { line: 1, quantity: 1 }, RefundLine { line: 1, quantity: 1 }]),
        ] {
            assert_eq!(
                plan(total, usd, &lines, &[], amount, &ls).unwrap_err().code(),
                "commerce.refund_invalid",
                "{amount:?} {ls:?}"
            );
        }
    }

    #[test]
    fn shares_are_proportional_and_the_last_takes_what_is_left() {
        let usd: Currency = "USD".parse().unwrap();
        let (profit, total) = (d("10.01"), d("30.00"));
        // 10.01 × 10/30 = 3.3366… → 3.34; twice; the last third takes 3.33.
        let first = share(profit, Decimal::ZERO, (Decimal::ZERO, d("10.00"), total), usd);
        let second = share(profit, first, (d("10.00"), d("10.00"), total), usd);
        let last = share(profit, first + second, (d("20.00"), d("10.00"), total), usd);
        assert_eq!((first, second, last), (d("3.34"), d("3.34"), d("3.33")));
        assert_eq!(first + second + last, profit);
        let jpy: Currency = "JPY".parse().unwrap();
        assert_eq!(share(d("1001"), Decimal::ZERO, (Decimal::ZERO, d("500"), d("1500")), jpy), d("334"));
    }
}
