//! What the known events of other services contribute to their analytics row: properties, the
//! user the event is about, revenue. An unknown type (a newer service) maps to nothing and is
//! still stored under its subject's name.

use chrono::{DateTime, SubsecRound, Utc};
use nexus_platform::consumer::Event;
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
                properties: obj(
                    json!({"plan": e.plan_code, "previous_plan": e.previous_plan_code, "status": e.status}),
                ),
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
        _ => return None,
    };
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_the_namespace() {
        assert_eq!(event_name("nexus.auth.user.signed_up"), "auth.user.signed_up");
        assert_eq!(event_name("other"), "other");
    }
}
