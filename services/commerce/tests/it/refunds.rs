//! Partial refunds of a store order: an amount or some lines, refunded at Shopify through
//! `refundCreate` with an idempotency key; never more than remains, even when requests race;
//! the same Idempotency-Key refunds once; the sale's profit and the commissions are taken back in
//! proportion, to the cent, and wholly once the order is refunded in full.

use nexus_proto::nexus::commerce::v1 as pb;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::support::{Caller, Service, code};
use crate::webhooks::{deliver, order, signed};

const ORDER_GID: &str = "gid://shopify/Order/5550001";

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn refund_of(order_id: &str, key: &str, amount: &str, lines: &[(u32, u32)]) -> pb::CreateRefundRequest {
    pb::CreateRefundRequest {
        order_id: order_id.into(),
        idempotency_key: key.into(),
        amount: amount.into(),
        lines: lines.iter().map(|&(line, quantity)| pb::RefundLine { line, quantity }).collect(),
        reason: "Arrived damaged".into(),
    }
}

/// A paid Shopify order of 44.97 USD (two units at 19.99 and 4.99 shipping) with a 10 %
/// commission for `partner`; answers its id.
async fn paid_store_order(s: &Service, admin: &Caller) -> String {
    s.connect_shopify(admin).await;
    let mut c = s.client().await;
    let rule = pb::CommissionRule {
        scope: "workspace".into(),
        beneficiary: "partner".into(),
        kind: "percentage".into(),
        value: "10".into(),
        currency: "USD".into(),
        ..Default::default()
    };
    c.put_commission_rule(admin.req(rule)).await.unwrap();
    let (status, _) = deliver(s, signed("orders/create", "wh-p1", &order("paid", "2026-11-03T10:00:00Z"))).await;
    assert_eq!(status, 200);
    s.shopify.set_order_total(ORDER_GID, "44.97");
    c.list_orders(admin.req(Default::default())).await.unwrap().into_inner().orders[0].id.clone()
}

async fn sale_figures(s: &Service) -> (Decimal, Decimal, Decimal) {
    sqlx::query_as(
        "SELECT s.profit, s.reporting_profit, c.amount FROM commerce.dropshipping_sales s \
         JOIN commerce.commissions c ON c.sale_id = s.id",
    )
    .fetch_one(&s.admin_pool)
    .await
    .unwrap()
}

fn cents(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn value(a: &Option<pb::Amount>) -> Decimal {
    d(&a.as_ref().unwrap().value)
}

#[tokio::test]
async fn partial_refunds_take_back_profit_and_commissions_in_proportion_and_never_exceed_the_order() {
    let s = Service::start().await;
    let admin = s.admin();
    let id = paid_store_order(&s, &admin).await;
    let (profit, reporting_profit, commission) = sale_figures(&s).await;
    assert_eq!(commission, d("4.50"), "10 % of 44.97, to the cent");
    let mut c = s.client().await;

    // 10.00 of 44.97.
    let first = c.create_refund(admin.req(refund_of(&id, "k-1", "10.00", &[]))).await.unwrap().into_inner();
    assert_eq!((first.status.as_str(), value(&first.amount)), ("completed", d("10.00")));
    assert_eq!(value(&first.profit_reversed), cents(profit * d("10.00") / d("44.97")));
    assert_eq!(value(&first.reporting_profit_reversed), cents(reporting_profit * d("10.00") / d("44.97")));
    let store = s.shopify.refunds();
    assert_eq!(store.len(), 1);
    assert_eq!((store[0].order_id.as_str(), store[0].amount), (ORDER_GID, d("10.00")));
    assert_eq!(first.store_refund_id, store[0].id);
    // The same key again: the same refund, nothing more at the store or here.
    let again = c.create_refund(admin.req(refund_of(&id, "k-1", "10.00", &[]))).await.unwrap().into_inner();
    assert_eq!(again.id, first.id);
    assert_eq!(s.shopify.refunds().len(), 1);
    assert_eq!(s.events("commerce.order.refunded").await, 1);

    // One unit of line 0 (19.99), with the store's line item.
    let second = c.create_refund(admin.req(refund_of(&id, "k-2", "", &[(0, 1)]))).await.unwrap().into_inner();
    assert_eq!(value(&second.amount), d("19.99"));
    assert_eq!(s.shopify.refunds()[1].lines, vec![("gid://shopify/LineItem/1".to_owned(), 1)]);
    assert_eq!(value(&second.profit_reversed), cents(profit * d("19.99") / d("44.97")));

    // 14.98 remains: of five racing 10.00 refunds exactly one passes.
    let racing = (0..5).map(|i| {
        let mut c = c.clone();
        let req = admin.req(refund_of(&id, &format!("race-{i}"), "10.00", &[]));
        async move { c.create_refund(req).await }
    });
    let outcomes = futures::future::join_all(racing).await;
    let passed = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(passed, 1, "{outcomes:?}");
    for e in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(code(e), "commerce.refund_exceeds_remaining");
    }
    // More than the 4.98 left, or a second unit of a line refunded already twice over: refused.
    let e = c.create_refund(admin.req(refund_of(&id, "k-over", "4.99", &[]))).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::AlreadyExists, "commerce.refund_exceeds_remaining"));
    let e = c.create_refund(admin.req(refund_of(&id, "k-line", "", &[(0, 2)]))).await.unwrap_err();
    assert_eq!(code(&e), "commerce.refund_invalid");

    // The last 4.98 refunds the order: what is left of the profit and commission goes with it.
    let last = c.create_refund(admin.req(refund_of(&id, "k-3", "4.98", &[]))).await.unwrap().into_inner();
    assert_eq!(last.status, "completed");
    let all = c.list_refunds(admin.req(pb::GetByIdRequest { id: id.clone() })).await.unwrap().into_inner().refunds;
    assert_eq!(all.len(), 4);
    let refunded: Decimal = all.iter().map(|r| value(&r.amount)).sum();
    assert_eq!(refunded, d("44.97"));
    assert_eq!(all.iter().map(|r| value(&r.profit_reversed)).sum::<Decimal>(), profit);
    assert_eq!(all.iter().map(|r| value(&r.reporting_profit_reversed)).sum::<Decimal>(), reporting_profit);
    let taken_back: Decimal = sqlx::query_scalar("SELECT sum(amount) FROM commerce.commission_reversals")
        .fetch_one(&s.admin_pool)
        .await
        .unwrap();
    assert_eq!(taken_back, commission);
    // Shares of 4.50: 1.00, 2.00, 1.00 (10.00 / 19.99 / 10.00 of 44.97), the rest 0.50.
    let mut shares: Vec<Decimal> =
        sqlx::query_scalar("SELECT amount FROM commerce.commission_reversals ORDER BY reversed_at, id")
            .fetch_all(&s.admin_pool)
            .await
            .unwrap();
    shares.sort();
    assert_eq!(shares, vec![d("0.50"), d("1.00"), d("1.00"), d("2.00")]);
    let o = c.get_order(admin.req(pb::GetByIdRequest { id: id.clone() })).await.unwrap().into_inner();
    assert_eq!(o.status, "refunded");
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.dropshipping_sales WHERE status = 'reversed'").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.commissions WHERE status = 'reversed'").await, 1);
    assert_eq!(s.events("commerce.order.refunded").await, 4);
    assert_eq!(s.shopify.refunds().len(), 4);
    // The payout statement nets to zero for the month the refunds were made in.
    let period = chrono::Utc::now().format("%Y-%m").to_string();
    let st = c
        .get_payout_statement(admin.req(pb::PayoutStatementRequest { period, beneficiary: "partner".into() }))
        .await
        .unwrap()
        .into_inner();
    let reversed: Decimal = st.lines.iter().filter(|l| l.kind == "reversal").map(|l| d(&l.amount)).sum();
    assert_eq!(reversed, -commission);

    // Nothing remains.
    let e = c.create_refund(admin.req(refund_of(&id, "k-4", "0.01", &[]))).await.unwrap_err();
    assert_eq!(code(&e), "commerce.order_not_refundable");
    // Another workspace does not see the order.
    let other = s.admin();
    let e = c.create_refund(other.req(refund_of(&id, "k-5", "1.00", &[]))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn bad_refunds_change_nothing_and_a_refused_one_releases_its_amount() {
    let s = Service::start().await;
    let admin = s.admin();
    let id = paid_store_order(&s, &admin).await;
    let mut c = s.client().await;
    for (key, amount, lines, want) in [
        ("", "1.00", vec![], "commerce.idempotency_key_invalid"),
        ("b-1", "", vec![], "commerce.refund_invalid"),
        ("b-2", "1.00", vec![(0, 1)], "commerce.refund_invalid"),
        ("b-3", "1.001", vec![], "commerce.refund_invalid"),
        ("b-4", "-1", vec![], "commerce.refund_invalid"),
        ("b-5", "ten", vec![], "commerce.refund_invalid"),
        ("b-6", "0", vec![], "commerce.refund_invalid"),
        ("b-7", "", vec![(3, 1)], "commerce.refund_invalid"),
        ("b-8", "", vec![(0, 0)], "commerce.refund_invalid"),
        ("b-9", "", vec![(0, 3)], "commerce.refund_invalid"),
        ("b-10", "44.98", vec![], "commerce.refund_exceeds_remaining"),
    ] {
        let e = c.create_refund(admin.req(refund_of(&id, key, amount, &lines))).await.unwrap_err();
        assert_eq!(code(&e), want, "{key} {amount} {lines:?}");
    }
    let e = c.create_refund(admin.req(refund_of("ord_nope", "b-11", "1.00", &[]))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let viewer = s.as_role(&admin, nexus_platform::identity::Role::Viewer);
    let e = c.create_refund(viewer.req(refund_of(&id, "b-12", "1.00", &[]))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.refunds").await, 0);
    assert!(s.shopify.refunds().is_empty());

    // The store took less than we think (a refund made in its admin): it refuses ours, which
    // fails with its reason and holds nothing.
    s.shopify.set_order_total(ORDER_GID, "5.00");
    let e = c.create_refund(admin.req(refund_of(&id, "r-1", "10.00", &[]))).await.unwrap_err();
    assert_eq!(code(&e), "commerce.store_refused");
    let failed = c.create_refund(admin.req(refund_of(&id, "r-1", "10.00", &[]))).await.unwrap().into_inner();
    assert_eq!(failed.status, "failed");
    assert!(failed.failure.contains("refundable amount"), "{}", failed.failure);
    assert_eq!(s.events("commerce.order.refunded").await, 0);
    s.shopify.set_order_total(ORDER_GID, "44.97");
    let ok = c.create_refund(admin.req(refund_of(&id, "r-2", "44.97", &[]))).await.unwrap().into_inner();
    assert_eq!(ok.status, "completed");
}
