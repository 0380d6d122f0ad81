//! What the known events of other services contribute to their analytics row: properties, the
//! user the event is about, revenue. An unknown type (a newer service) maps to nothing and is
//! still stored under its subject's name.

use chrono::{DateTime, SubsecRound, Utc};
use nexus_platform::consumer::Event;
use nexus_platform::grpc::from_ts;
use nexus_proto::events as ev;
use prost::{Message, Name};
use serde_json::{Value, json};

/// `nexus.auth.user.signed_up` -> `auth.user.signed_up`.
pub fn event_name(subject: &str) -> &str {
    subject.strip_prefix("nexus.").unwrap_or(subject)
}

pub fn occurred(event: &Event) -> DateTime<Utc> {
    event
        .envelope
        .occurred_at
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .unwrap_or_else(Utc::now)
        .trunc_subsecs(6)
}

/// What a known event contributes to its row: properties, the user it is about, revenue.
#[derive(Default)]
pub struct Mapped {
    pub properties: serde_json::Map<String, Value>,
    pub user_id: Option<String>,
    pub revenue: Option<(i64, String)>,
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Decodes the payload as `M` when the envelope says it is one.
fn decode<M: Message + Default + Name>(event: &Event) -> Option<M> {
    (event.envelope.event_type == M::full_name()).then(|| M::decode(event.envelope.payload.as_slice()).ok()).flatten()
}

/// Properties of the events NexusOne knows; an unknown type (a newer service) maps to nothing
/// and is still stored under its subject's name.
pub fn map_known(event: &Event) -> Option<Mapped> {
    let t = event.envelope.event_type.as_str();
    let m = match t {
        _ if t == ev::UserSignedUp::full_name() => {
            let e: ev::UserSignedUp = decode(event)?;
            Mapped {
                properties: obj(json!({"email": e.email, "locale": e.locale})),
                user_id: non_empty(e.user_id),
                revenue: None,
            }
        }
        _ if t == ev::UserLoggedIn::full_name() => {
            let e: ev::UserLoggedIn = decode(event)?;
            Mapped {
                properties: obj(json!({"method": e.method, "session_id": e.session_id, "ip": e.ip})),
                user_id: non_empty(e.user_id),
                revenue: None,
            }
        }
        _ if t == ev::UserLocked::full_name() => {
            let e: ev::UserLocked = decode(event)?;
            Mapped {
                properties: obj(json!({"minutes": e.minutes, "factor": e.factor})),
                user_id: non_empty(e.user_id),
                revenue: None,
            }
        }
        _ if t == ev::MfaEnabled::full_name() => {
            let e: ev::MfaEnabled = decode(event)?;
            Mapped { user_id: non_empty(e.user_id), ..Mapped::default() }
        }
        _ if t == ev::SessionRevoked::full_name() => {
            let e: ev::SessionRevoked = decode(event)?;
            Mapped {
                properties: obj(json!({"session_id": e.session_id, "reason": e.reason})),
                user_id: non_empty(e.user_id),
                revenue: None,
            }
        }
        _ if t == ev::ApiKeyCreated::full_name() => {
            let e: ev::ApiKeyCreated = decode(event)?;
            Mapped { properties: obj(json!({"key_id": e.key_id, "scopes": e.scopes})), ..Mapped::default() }
        }
        _ if t == ev::ApiKeyRevoked::full_name() => {
            let e: ev::ApiKeyRevoked = decode(event)?;
            Mapped { properties: obj(json!({"key_id": e.key_id})), ..Mapped::default() }
        }
        _ if t == ev::MemberInvited::full_name() => {
            let e: ev::MemberInvited = decode(event)?;
            Mapped { properties: obj(json!({"invitation_id": e.invitation_id, "role": e.role})), ..Mapped::default() }
        }
        _ if t == ev::MemberJoined::full_name() => {
            let e: ev::MemberJoined = decode(event)?;
            Mapped { properties: obj(json!({"role": e.role})), user_id: non_empty(e.user_id), revenue: None }
        }
        _ if t == ev::MemberRemoved::full_name() => {
            let e: ev::MemberRemoved = decode(event)?;
            Mapped { user_id: non_empty(e.user_id), ..Mapped::default() }
        }
        _ if t == ev::AccountDeletionRequested::full_name() => {
            let e: ev::AccountDeletionRequested = decode(event)?;
            Mapped { user_id: non_empty(e.user_id), ..Mapped::default() }
        }
        _ if t == ev::SubscriptionChanged::full_name() => {
            let e: ev::SubscriptionChanged = decode(event)?;
            Mapped {
                // The monthly amount and currency feed the MRR report (older events lack them).
                properties: obj(json!({"plan": e.plan_code, "previous_plan": e.previous_plan_code,
                    "status": e.status, "monthly_amount_minor": e.monthly_amount_minor, "currency": e.currency})),
                ..Mapped::default()
            }
        }
        _ if t == ev::CreditsLow::full_name() => {
            let e: ev::CreditsLow = decode(event)?;
            Mapped {
                properties: obj(
                    json!({"available": e.available, "period_grant": e.period_grant, "percent_used": e.percent_used}),
                ),
                ..Mapped::default()
            }
        }
        _ if t == ev::CreditsExhausted::full_name() => Mapped::default(),
        _ if t == ev::InvoicePaid::full_name() => {
            let e: ev::InvoicePaid = decode(event)?;
            let valid = e.currency.parse::<nexus_kernel::Currency>().is_ok();
            Mapped {
                properties: obj(json!({"invoice_id": e.invoice_id})),
                revenue: valid.then_some((e.amount_minor, e.currency)),
                ..Mapped::default()
            }
        }
        _ if t == ev::PaymentFailed::full_name() => {
            let e: ev::PaymentFailed = decode(event)?;
            Mapped { properties: obj(json!({"invoice_id": e.invoice_id})), ..Mapped::default() }
        }
        _ if t == ev::ChurnRiskHigh::full_name() => {
            // Analytics' own announcement; stored for the trail, never counted as activity.
            let e: ev::ChurnRiskHigh = decode(event)?;
            Mapped {
                properties: obj(json!({"population": e.population, "subject": e.subject, "score": e.score,
                    "threshold": e.threshold})),
                ..Mapped::default()
            }
        }
        _ if t == ev::CreditsCharged::full_name() => {
            let e: ev::CreditsCharged = decode(event)?;
            Mapped {
                properties: obj(json!({"reservation_id": e.reservation_id, "action": e.action, "credits": e.credits})),
                ..Mapped::default()
            }
        }
        _ if t == ev::ContentGenerated::full_name() => {
            let e: ev::ContentGenerated = decode(event)?;
            Mapped {
                properties: obj(json!({"generation_id": e.generation_id, "kind": e.kind, "language": e.language,
                    "provider": e.provider, "model": e.model, "total_tokens": e.total_tokens, "credits": e.credits,
                    "status": e.status})),
                ..Mapped::default()
            }
        }
        _ if t == ev::PagePublished::full_name() => {
            let e: ev::PagePublished = decode(event)?;
            Mapped {
                properties: obj(
                    json!({"page_id": e.page_id, "slug": e.slug, "version": e.version, "language": e.language}),
                ),
                ..Mapped::default()
            }
        }
        _ if t == ev::PageUnpublished::full_name() => {
            let e: ev::PageUnpublished = decode(event)?;
            Mapped { properties: obj(json!({"page_id": e.page_id, "slug": e.slug})), ..Mapped::default() }
        }
        _ if t == ev::PageLeadCaptured::full_name() => {
            let e: ev::PageLeadCaptured = decode(event)?;
            // The visitor's name and message are personal free text: only whether they were
            // given is kept. Email and phone are hashed by their keys.
            Mapped {
                properties: obj(json!({"page_id": e.page_id, "lead_id": e.lead_id, "slug": e.slug,
                    "language": e.language, "email": e.email, "phone": e.phone, "consent": e.consent,
                    "has_name": !e.name.is_empty(), "has_message": !e.message.is_empty()})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AgentReplied::full_name() => {
            let e: ev::AgentReplied = decode(event)?;
            Mapped {
                properties: obj(json!({"agent_id": e.agent_id, "conversation_id": e.conversation_id,
                    "provider": e.provider, "credits": e.credits})),
                ..Mapped::default()
            }
        }
        _ if t == ev::MeteredJobFinished::full_name() => {
            let e: ev::MeteredJobFinished = decode(event)?;
            Mapped {
                properties: obj(json!({"reservation_id": e.reservation_id, "succeeded": e.succeeded,
                    "credits": e.credits, "job": e.job})),
                ..Mapped::default()
            }
        }
        _ if t == ev::ConsentChanged::full_name() => {
            // Channel `ads` withdrawn is a contact's "do not sell or share".
            let e: ev::ConsentChanged = decode(event)?;
            Mapped {
                properties: obj(json!({"contact_id": e.contact_id, "channel": e.channel, "purpose": e.purpose,
                    "status": e.status, "source": e.source})),
                ..Mapped::default()
            }
        }
        _ if t == ev::DoNotSellChanged::full_name() => {
            let e: ev::DoNotSellChanged = decode(event)?;
            Mapped {
                properties: obj(json!({"do_not_sell": e.do_not_sell})),
                user_id: non_empty(e.actor_id),
                ..Mapped::default()
            }
        }
        _ if t == ev::WhatsAppMessageReceived::full_name() => {
            let e: ev::WhatsAppMessageReceived = decode(event)?;
            Mapped {
                properties: obj(json!({"message_id": e.message_id, "contact_id": e.contact_id,
                    "number_id": e.number_id, "type": e.r#type})),
                ..Mapped::default()
            }
        }
        _ if t == ev::WhatsAppMessageSent::full_name() => {
            let e: ev::WhatsAppMessageSent = decode(event)?;
            Mapped {
                properties: obj(json!({"message_id": e.message_id, "contact_id": e.contact_id,
                    "number_id": e.number_id, "type": e.r#type, "broadcast_id": e.broadcast_id})),
                ..Mapped::default()
            }
        }
        _ if t == ev::WhatsAppMessageStatusChanged::full_name() => {
            let e: ev::WhatsAppMessageStatusChanged = decode(event)?;
            Mapped {
                properties: obj(json!({"message_id": e.message_id, "contact_id": e.contact_id,
                    "status": e.status, "error_code": e.error_code})),
                ..Mapped::default()
            }
        }
        _ if t == ev::WhatsAppBroadcastFinished::full_name() => {
            let e: ev::WhatsAppBroadcastFinished = decode(event)?;
            Mapped {
                properties: obj(json!({"broadcast_id": e.broadcast_id, "status": e.status, "sent": e.sent,
                    "failed": e.failed, "unknown": e.unknown, "credits_charged": e.credits_charged})),
                ..Mapped::default()
            }
        }
        _ if t == ev::WhatsAppBotHandoff::full_name() => {
            let e: ev::WhatsAppBotHandoff = decode(event)?;
            Mapped {
                properties: obj(json!({"number_id": e.number_id, "contact_id": e.contact_id,
                    "direction": e.direction})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AdsCampaignCreated::full_name() => {
            let e: ev::AdsCampaignCreated = decode(event)?;
            Mapped {
                properties: obj(json!({"build_id": e.build_id, "campaign_id": e.campaign_id, "provider": e.provider,
                    "ad_account": e.ad_account, "daily_budget_minor": e.daily_budget_minor, "currency": e.currency})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AdsCampaignFailed::full_name() => {
            let e: ev::AdsCampaignFailed = decode(event)?;
            Mapped {
                properties: obj(json!({"build_id": e.build_id, "provider": e.provider, "step": e.step})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AdsCampaignStatusChanged::full_name() => {
            let e: ev::AdsCampaignStatusChanged = decode(event)?;
            Mapped {
                properties: obj(json!({"build_id": e.build_id, "provider": e.provider,
                    "old_status": e.old_status, "new_status": e.new_status})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AdsConnectionExpiring::full_name() => {
            let e: ev::AdsConnectionExpiring = decode(event)?;
            Mapped {
                properties: obj(json!({"connection_id": e.connection_id, "provider": e.provider})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AdsConnectionExpired::full_name() => {
            let e: ev::AdsConnectionExpired = decode(event)?;
            Mapped {
                properties: obj(json!({"connection_id": e.connection_id, "provider": e.provider})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AdsPostScheduled::full_name() => {
            let e: ev::AdsPostScheduled = decode(event)?;
            Mapped {
                properties: obj(json!({"post_id": e.post_id, "target_id": e.target_id, "provider": e.provider,
                    "platform": e.platform, "account": e.account})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AdsPostPublished::full_name() => {
            let e: ev::AdsPostPublished = decode(event)?;
            // How late the scheduler was, for the scheduling report.
            let lateness_ms =
                match (e.scheduled_at.as_ref().and_then(from_ts), e.published_at.as_ref().and_then(from_ts)) {
                    (Some(due), Some(at)) => (at - due).num_milliseconds().max(0),
                    _ => 0,
                };
            Mapped {
                properties: obj(json!({"post_id": e.post_id, "target_id": e.target_id, "provider": e.provider,
                    "platform": e.platform, "account": e.account, "platform_post_id": e.platform_post_id,
                    "permalink": e.permalink, "lateness_ms": lateness_ms})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AdsPostFailed::full_name() => {
            let e: ev::AdsPostFailed = decode(event)?;
            Mapped {
                properties: obj(json!({"post_id": e.post_id, "target_id": e.target_id, "provider": e.provider,
                    "platform": e.platform, "account": e.account, "error_code": e.error_code})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AdsPostEngagement::full_name() => {
            let e: ev::AdsPostEngagement = decode(event)?;
            Mapped {
                properties: obj(json!({"post_id": e.post_id, "target_id": e.target_id, "provider": e.provider,
                    "platform": e.platform, "account": e.account, "platform_post_id": e.platform_post_id,
                    "likes": e.likes, "comments": e.comments, "shares": e.shares, "views": e.views})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AdsAccountPaused::full_name() => {
            let e: ev::AdsAccountPaused = decode(event)?;
            Mapped {
                properties: obj(json!({"connection_id": e.connection_id, "provider": e.provider})),
                ..Mapped::default()
            }
        }
        _ if t == ev::VideoRequested::full_name() => {
            let e: ev::VideoRequested = decode(event)?;
            Mapped {
                properties: obj(json!({"video_id": e.video_id, "language": e.language, "aspect_ratio": e.aspect_ratio,
                    "characters": e.characters, "estimated_credits": e.estimated_credits,
                    "voice_provider": e.voice_provider, "provider": e.provider})),
                ..Mapped::default()
            }
        }
        _ if t == ev::VideoCompleted::full_name() => {
            let e: ev::VideoCompleted = decode(event)?;
            Mapped {
                properties: obj(json!({"video_id": e.video_id, "language": e.language, "provider": e.provider,
                    "duration_seconds": e.duration_seconds, "credits": e.credits,
                    "characters_billed": e.characters_billed, "size_bytes": e.size_bytes})),
                ..Mapped::default()
            }
        }
        _ if t == ev::VideoFailed::full_name() => {
            let e: ev::VideoFailed = decode(event)?;
            Mapped {
                properties: obj(json!({"video_id": e.video_id, "provider": e.provider, "status": e.status,
                    "error_code": e.error_code})),
                ..Mapped::default()
            }
        }
        _ if t == ev::CommerceProductImported::full_name() => {
            let e: ev::CommerceProductImported = decode(event)?;
            Mapped {
                properties: obj(json!({"product_id": e.product_id, "supplier": e.supplier,
                    "supplier_product_id": e.supplier_product_id, "variants": e.variants})),
                ..Mapped::default()
            }
        }
        _ if t == ev::CommerceOrderCreated::full_name() => {
            let e: ev::CommerceOrderCreated = decode(event)?;
            // An order is not revenue until it is paid (the sale): only its size is kept here. The
            // customer's email and phone are hashed by their keys; the name is not kept.
            Mapped {
                properties: obj(json!({"order_id": e.order_id, "source": e.source, "total": e.total,
                    "currency": e.currency, "email": e.customer_email, "phone": e.customer_phone})),
                ..Mapped::default()
            }
        }
        _ if t == ev::CommerceOrderFulfilled::full_name() => {
            let e: ev::CommerceOrderFulfilled = decode(event)?;
            Mapped {
                properties: obj(json!({"order_id": e.order_id, "supplier": e.supplier,
                    "shipments": e.tracking_numbers.len()})),
                ..Mapped::default()
            }
        }
        _ if t == ev::CommerceSaleRecorded::full_name() => {
            let e: ev::CommerceSaleRecorded = decode(event)?;
            Mapped {
                properties: obj(json!({"sale_id": e.sale_id, "order_id": e.order_id, "profit": e.profit,
                    "reporting_revenue": e.reporting_revenue, "reporting_currency": e.reporting_currency})),
                revenue: minor_units(&e.revenue, &e.currency),
                ..Mapped::default()
            }
        }
        _ if t == ev::CommerceOrderRefunded::full_name() => {
            let e: ev::CommerceOrderRefunded = decode(event)?;
            // A refund takes back revenue: it counts negative in the revenue report.
            Mapped {
                properties: obj(json!({"order_id": e.order_id, "amount": e.amount})),
                revenue: minor_units(&e.amount, &e.currency).map(|(m, c)| (-m, c)),
                ..Mapped::default()
            }
        }
        _ => return None,
    };
    Some(m)
}

/// A decimal amount as services write it in events (`"19.99"`) in minor units of its currency,
/// exactly (no floating point). `None` for an unknown currency, more decimals than it has, or
/// anything but an optionally signed plain decimal.
fn minor_units(amount: &str, currency: &str) -> Option<(i64, String)> {
    let digits = usize::from(currency.parse::<nexus_kernel::Currency>().ok()?.minor_digits());
    let (negative, unsigned) = match amount.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, amount.trim()),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 15 || !plain(whole) || !plain(fraction) || fraction.len() > digits {
        return None;
    }
    let text = format!("{whole}{fraction:0<digits$}");
    let minor: i64 = text.parse().ok()?;
    Some((if negative { -minor } else { minor }, currency.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_exact_minor_units() {
        assert_eq!(minor_units("19.99", "USD"), Some((1999, "USD".into())));
        assert_eq!(minor_units("19.9", "USD"), Some((1990, "USD".into())));
        assert_eq!(minor_units("20", "USD"), Some((2000, "USD".into())));
        assert_eq!(minor_units("-5.5", "BRL"), Some((-550, "BRL".into())));
        assert_eq!(minor_units("1500", "JPY"), Some((1500, "JPY".into())));
        assert_eq!(minor_units("1.234", "KWD"), Some((1234, "KWD".into())));
        for bad in [("1.5", "JPY"), ("1.999", "USD"), ("", "USD"), (".5", "USD"), ("1e3", "USD"), ("1", "XXX")] {
            assert_eq!(minor_units(bad.0, bad.1), None, "{bad:?}");
        }
    }

    #[test]
    fn names_drop_the_namespace() {
        assert_eq!(event_name("nexus.auth.user.signed_up"), "auth.user.signed_up");
        assert_eq!(event_name("other"), "other");
    }
}
