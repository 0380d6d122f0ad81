//! Local billing (no Stripe key): checkout, plan changes, cancellation, renewal and top-ups go
//! through the same state machine as Stripe, with local receipts.

use std::time::Duration;

use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::subscriptions::v1 as pb;
use nexus_testkit::eventually;
use nexus_testkit::identity::authed;

use crate::support::*;

pub fn plan_checkout(plan: &str, key: &str) -> pb::CheckoutRequest {
    pb::CheckoutRequest {
        kind: "plan".into(),
        plan_code: plan.into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_local_checkout_upgrades_through_the_state_machine_once() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();

    let session = c.create_checkout(authed(plan_checkout("pro", "chk-1"), &token)).await.unwrap().into_inner();
    assert_eq!((session.provider.as_str(), session.status.as_str(), session.url.as_str()), ("local", "open", ""));
    let amount = session.amount.clone().unwrap();
    assert_eq!((amount.amount_minor, amount.currency.as_str()), (9700, "USD"));
    // Same key, same session; nothing applied before completion.
    let again = c.create_checkout(authed(plan_checkout("pro", "chk-1"), &token)).await.unwrap().into_inner();
    assert_eq!(again.id, session.id);
    let sub = c.get_subscription(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert_eq!(sub.plan_code, "free");

    let done = c
        .complete_local_checkout(authed(pb::CompleteLocalCheckoutRequest { session_id: session.id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.status, "complete");
    let sub = c.get_subscription(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert_eq!((sub.plan_code.as_str(), sub.status.as_str(), sub.billing.as_str()), ("pro", "active", "local"));
    assert!(sub.access);
    // FREE's 50 roll into PRO (PRO rolls over), plus PRO's 500 for the new period.
    assert_eq!(svc.balance(&token).await.available, 550);

    // Completing twice applies nothing more.
    c.complete_local_checkout(authed(pb::CompleteLocalCheckoutRequest { session_id: session.id.clone() }, &token))
        .await
        .unwrap();
    assert_eq!(svc.balance(&token).await.available, 550);
    assert_eq!(ledger_sum(&svc, ws).await, 550);

    let invoices = c.list_invoices(authed(pb::ListInvoicesRequest::default(), &token)).await.unwrap().into_inner();
    assert_eq!(invoices.items.len(), 1);
    let inv = &invoices.items[0];
    assert_eq!(
        (inv.provider.as_str(), inv.status.as_str(), inv.reason.as_str()),
        ("local", "paid", "subscription_create")
    );
    assert_eq!(inv.amount_paid.as_ref().unwrap().amount_minor, 9700);
    assert_eq!(
        outbox_subjects(&svc, ws, "nexus.subscriptions.%")
            .await
            .iter()
            .filter(|s| !s.contains("audit"))
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            "nexus.subscriptions.subscription.changed",
            "nexus.subscriptions.subscription.changed",
            "nexus.subscriptions.invoice.paid"
        ]
    );

    // A paid workspace changes plan instead of checking out again.
    let e = c.create_checkout(authed(plan_checkout("premium", "chk-2"), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "subscriptions.already_subscribed");
}

#[tokio::test]
async fn upgrades_are_prorated_now_downgrades_and_cancellations_wait_for_the_period_end() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();
    let s = c.create_checkout(authed(plan_checkout("pro", "k"), &token)).await.unwrap().into_inner();
    c.complete_local_checkout(authed(pb::CompleteLocalCheckoutRequest { session_id: s.id }, &token)).await.unwrap();
    let before = svc.balance(&token).await.available;

    let change = |plan: &str, key: &str| pb::ChangePlanRequest { plan_code: plan.into(), idempotency_key: key.into() };
    let sub = c.change_plan(authed(change("premium", "up"), &token)).await.unwrap().into_inner();
    assert_eq!(sub.plan_code, "premium");
    let gained = svc.balance(&token).await.available - before;
    // 1,500 more a month, for (almost) the whole period left.
    assert!((1490..=1500).contains(&gained), "prorated upgrade grant: {gained}");
    let invoices = c.list_invoices(authed(pb::ListInvoicesRequest::default(), &token)).await.unwrap().into_inner();
    let update = invoices.items.iter().find(|i| i.reason == "subscription_update").expect("proration receipt");
    let due = update.amount_paid.as_ref().unwrap().amount_minor;
    assert!((19_900..=20_000).contains(&due), "prorated price difference: {due}");

    // Downgrade: PREMIUM stays until the period ends.
    let sub = c.change_plan(authed(change("pro", "down"), &token)).await.unwrap().into_inner();
    assert_eq!((sub.plan_code.as_str(), sub.pending_plan_code.as_str()), ("premium", "pro"));
    let sub = c.resume_subscription(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert_eq!((sub.plan_code.as_str(), sub.pending_plan_code.as_str()), ("premium", ""));
    let sub = c.cancel_subscription(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert!(sub.cancel_at_period_end);
    assert_eq!(sub.plan_code, "premium");
    let sub = c.resume_subscription(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert!(!sub.cancel_at_period_end);
    c.change_plan(authed(change("pro", "down-2"), &token)).await.unwrap();

    // The period ends: the renewal sweep applies the downgrade, grants PRO's month and writes a receipt.
    let available = svc.balance(&token).await.available;
    sqlx::query(
        "UPDATE subscriptions.subscriptions SET current_period_end = now() - interval '1 second' WHERE tenant_id = $1",
    )
    .bind(ws.as_uuid())
    .execute(&svc.admin().await)
    .await
    .unwrap();
    eventually(Duration::from_secs(10), || async {
        let sub = svc.client().get_subscription(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
        sub.plan_code == "pro" && sub.pending_plan_code.is_empty()
    })
    .await;
    assert_eq!(svc.balance(&token).await.available, available + 500);
    let invoices = c.list_invoices(authed(pb::ListInvoicesRequest::default(), &token)).await.unwrap().into_inner();
    assert!(
        invoices
            .items
            .iter()
            .any(|i| i.reason == "subscription_cycle" && i.amount_paid.as_ref().unwrap().amount_minor == 9700)
    );

    // Cancel, then the period ends: back on FREE, whose credits do not roll over.
    c.cancel_subscription(authed(pb::Empty {}, &token)).await.unwrap();
    sqlx::query(
        "UPDATE subscriptions.subscriptions SET current_period_end = now() - interval '1 second' WHERE tenant_id = $1",
    )
    .bind(ws.as_uuid())
    .execute(&svc.admin().await)
    .await
    .unwrap();
    eventually(Duration::from_secs(10), || async {
        svc.client().get_subscription(authed(pb::Empty {}, &token)).await.unwrap().into_inner().plan_code == "free"
    })
    .await;
    assert_eq!(svc.balance(&token).await.available, 50);
    assert_eq!(ledger_sum(&svc, ws).await, 50);
}

#[tokio::test]
async fn credit_packs_are_bought_once_per_checkout() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();
    let packs = c
        .list_credit_packs(authed(pb::ListPlansRequest { currency: "eur".into() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(packs.items.len(), 3);
    assert_eq!(packs.items[0].price.as_ref().unwrap().currency, "EUR");

    let req = pb::CheckoutRequest {
        kind: "credits".into(),
        pack_code: "credits_100".into(),
        currency: "BRL".into(),
        idempotency_key: "pack-1".into(),
        ..Default::default()
    };
    let s = c.create_checkout(authed(req, &token)).await.unwrap().into_inner();
    assert_eq!(s.amount.as_ref().unwrap().amount_minor, 9900);
    for _ in 0..2 {
        c.complete_local_checkout(authed(pb::CompleteLocalCheckoutRequest { session_id: s.id.clone() }, &token))
            .await
            .unwrap();
    }
    assert_eq!(svc.balance(&token).await.available, 150);
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM subscriptions.credit_ledger WHERE tenant_id = $1 ORDER BY created_at")
            .bind(ws.as_uuid())
            .fetch_all(&svc.admin().await)
            .await
            .unwrap();
    assert_eq!(kinds, vec!["grant", "purchase"]);
}

#[tokio::test]
async fn billing_calls_refuse_bad_input_other_workspaces_and_members() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();
    let bad = |kind: &str, plan: &str, pack: &str, currency: &str| pb::CheckoutRequest {
        kind: kind.into(),
        plan_code: plan.into(),
        pack_code: pack.into(),
        currency: currency.into(),
        idempotency_key: format!("k-{kind}-{plan}-{pack}-{currency}"),
        ..Default::default()
    };
    for (req, code) in [
        (bad("bogus", "pro", "", ""), "subscriptions.invalid_checkout_kind"),
        (bad("plan", "gold", "", ""), "subscriptions.unknown_plan"),
        (bad("plan", "free", "", ""), "subscriptions.unknown_plan"),
        (bad("plan", "pro", "", "JPY"), "subscriptions.unsupported_currency"),
        (bad("plan", "pro", "", "dollars"), "money.unsupported_currency"),
        (bad("credits", "", "credits_7", ""), "subscriptions.unknown_pack"),
    ] {
        let e = c.create_checkout(authed(req, &token)).await.unwrap_err();
        assert_eq!(code_of(&e), code);
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{code}");
    }
    let bad_url = pb::CheckoutRequest { success_url: "javascript:alert(1)".into(), ..plan_checkout("pro", "u") };
    assert_eq!(code_of(&c.create_checkout(authed(bad_url, &token)).await.unwrap_err()), "subscriptions.invalid_url");
    let long_key = pb::CheckoutRequest { idempotency_key: "k".repeat(300), ..plan_checkout("pro", "") };
    assert_eq!(
        code_of(&c.create_checkout(authed(long_key, &token)).await.unwrap_err()),
        "subscriptions.invalid_idempotency_key"
    );

    // Members may not spend the workspace's money; other workspaces cannot see or finish a session.
    let member = svc.issuer.user_token(ws, Role::Member);
    let e = c.create_checkout(authed(plan_checkout("pro", "m"), &member)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let s = c.create_checkout(authed(plan_checkout("pro", "mine"), &token)).await.unwrap().into_inner();
    let other = svc.owner(WorkspaceId::new());
    let e = c
        .complete_local_checkout(authed(pb::CompleteLocalCheckoutRequest { session_id: s.id.clone() }, &other))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "subscriptions.checkout_not_found");

    // Nothing to change, cancel or manage on FREE; no portal without Stripe.
    let e = c
        .change_plan(authed(pb::ChangePlanRequest { plan_code: "pro".into(), idempotency_key: "x".into() }, &token))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "subscriptions.checkout_required");
    let e = c.cancel_subscription(authed(pb::Empty {}, &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "subscriptions.nothing_to_cancel");
    let e = c.create_portal(authed(pb::PortalRequest::default(), &token)).await.unwrap_err();
    assert_eq!(code_of(&e), "subscriptions.portal_unavailable");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);

    // None of it changed anything.
    let sub = c.get_subscription(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert_eq!(sub.plan_code, "free");
    assert_eq!(svc.balance(&token).await.available, 50);
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions.checkout_sessions")
        .fetch_one(&svc.admin().await)
        .await
        .unwrap();
    assert_eq!(sessions, 1);
}
