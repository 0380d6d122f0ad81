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

/// The order payload at `updated_at` with `financial` status and these store refunds:
/// (Shopify refund id, money back, units of line 1 taken back).
fn with_refunds(financial: &str, updated_at: &str, refunds: &[(u64, &str, u32)]) -> serde_json::Value {
    let mut v = order(financial, updated_at);
    v["refunds"] = refunds
        .iter()
        .map(|&(id, amount, units)| {
            let lines: Vec<serde_json::Value> = (units > 0)
                .then(|| serde_json::json!({"line_item_id": 1, "quantity": units, "restock_type": "return"}))
                .into_iter()
                .collect();
            serde_json::json!({
                "id": id, "order_id": 5_550_001_u64, "note": "store refund", "refund_line_items": lines,
                "transactions": [{"id": id + 1, "kind": "refund", "status": "success", "amount": amount, "currency": "USD"}],
            })
        })
        .collect();
    v
}

async fn refunds_here(s: &Service, admin: &Caller, id: &str) -> Vec<pb::Refund> {
    let mut c = s.client().await;
    c.list_refunds(admin.req(pb::GetByIdRequest { id: id.into() })).await.unwrap().into_inner().refunds
}

async fn reversals(s: &Service) -> Vec<Decimal> {
    sqlx::query_scalar("SELECT amount FROM commerce.commission_reversals ORDER BY amount")
        .fetch_all(&s.admin_pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_partial_refund_made_at_the_store_is_recorded_once_and_a_full_one_later_takes_the_rest() {
    let s = Service::start().await;
    let admin = s.admin();
    let id = paid_store_order(&s, &admin).await;
    let (profit, reporting_profit, commission) = sale_figures(&s).await;
    // 10.00 refunded here first: it comes back in the store's payloads with the store's id.
    let mut c = s.client().await;
    let ours = c.create_refund(admin.req(refund_of(&id, "k-1", "10.00", &[]))).await.unwrap().into_inner();
    let ours_id: u64 = ours.store_refund_id.rsplit('/').next().unwrap().parse().unwrap();

    // One unit (19.99) refunded in the store's admin: delivered twice (two deliveries, the
    // second a later version of the order) and once more as the same delivery.
    let partial =
        with_refunds("partially_refunded", "2026-11-04T10:00:00Z", &[(ours_id, "10.00", 0), (7001, "19.99", 1)]);
    for (wh, updated) in [("wh-pr-1", "2026-11-04T10:00:00Z"), ("wh-pr-2", "2026-11-04T11:00:00Z")] {
        let mut p = partial.clone();
        p["updated_at"] = updated.into();
        let (status, body) = deliver(&s, signed("orders/updated", wh, &p)).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("paid")), "{body}");
    }
    let (_, body) = deliver(&s, signed("orders/updated", "wh-pr-2", &partial)).await;
    assert_eq!(body["duplicate"], true);
    let all = refunds_here(&s, &admin, &id).await;
    assert_eq!(all.len(), 2, "ours and the store's, once each: {all:?}");
    let store = all.iter().find(|r| r.store_refund_id == "7001").expect("the store's refund");
    assert_eq!((store.status.as_str(), value(&store.amount)), ("completed", d("19.99")));
    assert_eq!(value(&store.profit_reversed), cents(profit * d("19.99") / d("44.97")));
    assert_eq!(value(&store.reporting_profit_reversed), cents(reporting_profit * d("19.99") / d("44.97")));
    // Shares of the 4.50 commission: 1.00 for our 10.00, 2.00 for the store's 19.99.
    assert_eq!(reversals(&s).await, vec![d("1.00"), d("2.00")]);
    assert_eq!(s.events("commerce.order.refunded").await, 2);
    let o = c.get_order(admin.req(pb::GetByIdRequest { id: id.clone() })).await.unwrap().into_inner();
    assert_eq!(o.status, "paid");
    // The refunded line's unit cannot be refunded here a second time.
    let e = c.create_refund(admin.req(refund_of(&id, "k-line", "", &[(0, 2)]))).await.unwrap_err();
    assert_eq!(code(&e), "commerce.refund_invalid");

    // Refunded in full at the store later: what is left (14.98) goes with the rest of the
    // profit and commission.
    let full = with_refunds("refunded", "2026-11-05T10:00:00Z", &[(ours_id, "10.00", 0), (7001, "19.99", 1)]);
    let (_, body) = deliver(&s, signed("orders/updated", "wh-full", &full)).await;
    assert_eq!(body["status"], "refunded");
    let all = refunds_here(&s, &admin, &id).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all.iter().map(|r| value(&r.amount)).sum::<Decimal>(), d("44.97"));
    let rest = all.iter().find(|r| r.store_refund_id.is_empty() && r.id != ours.id).expect("the rest");
    assert_eq!(value(&rest.amount), d("14.98"));
    assert_eq!(all.iter().map(|r| value(&r.profit_reversed)).sum::<Decimal>(), profit);
    assert_eq!(all.iter().map(|r| value(&r.reporting_profit_reversed)).sum::<Decimal>(), reporting_profit);
    assert_eq!(reversals(&s).await, vec![d("1.00"), d("1.50"), d("2.00")]);
    assert_eq!(reversals(&s).await.into_iter().sum::<Decimal>(), commission);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.dropshipping_sales WHERE status = 'reversed'").await, 1);
    assert_eq!(s.events("commerce.order.refunded").await, 3);
    // Only our own refund went to the store.
    assert_eq!(s.shopify.refunds().len(), 1);
}

#[tokio::test]
async fn store_refunds_delivered_out_of_order_end_in_the_same_figures() {
    let s = Service::start().await;
    let admin = s.admin();
    let id = paid_store_order(&s, &admin).await;
    let (profit, reporting_profit, commission) = sale_figures(&s).await;
    // The full refund's payload (both refunds) arrives before the partial one's.
    let full = with_refunds("refunded", "2026-11-05T10:00:00Z", &[(7001, "19.99", 1), (7002, "24.98", 1)]);
    let partial = with_refunds("partially_refunded", "2026-11-04T10:00:00Z", &[(7001, "19.99", 1)]);
    let (_, body) = deliver(&s, signed("orders/updated", "wh-full", &full)).await;
    assert_eq!(body["status"], "refunded");
    let (_, body) = deliver(&s, signed("orders/updated", "wh-partial", &partial)).await;
    assert_eq!(body["status"], "refunded", "the older version changes nothing");
    let all = refunds_here(&s, &admin, &id).await;
    let mut ids: Vec<&str> = all.iter().map(|r| r.store_refund_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["7001", "7002"]);
    let first = &all.iter().find(|r| r.store_refund_id == "7001").unwrap();
    assert_eq!(value(&first.profit_reversed), cents(profit * d("19.99") / d("44.97")));
    assert_eq!(all.iter().map(|r| value(&r.profit_reversed)).sum::<Decimal>(), profit);
    assert_eq!(all.iter().map(|r| value(&r.reporting_profit_reversed)).sum::<Decimal>(), reporting_profit);
    // 2.00 for 19.99 of 44.97, the rest (2.50) with the refund that completes the order.
    assert_eq!(reversals(&s).await, vec![d("2.00"), d("2.50")]);
    assert_eq!(reversals(&s).await.into_iter().sum::<Decimal>(), commission);
    assert_eq!(s.events("commerce.order.refunded").await, 2);
    let o = s.client().await.get_order(admin.req(pb::GetByIdRequest { id })).await.unwrap().into_inner();
    assert_eq!(o.status, "refunded");

    // A store refund id that is not a number: refused, nothing recorded.
    let mut bad = with_refunds("partially_refunded", "2026-11-06T10:00:00Z", &[(7003, "1.00", 0)]);
    bad["refunds"][0]["id"] = "x'; --".into();
    let (status, _) = deliver(&s, signed("orders/updated", "wh-bad", &bad)).await;
    assert_eq!(status, 422);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.refunds").await, 2);
}
