//! The CRM timeline of a contact: what people wrote (notes, tasks, calls) and what the platform
//! recorded (messages, page leads, purchases, stage changes …), each with its actor and time.

use chrono::{DateTime, Duration, Utc};
use nexus_kernel::{Error, UserId};

/// Longest body of an activity (the column's check says the same).
pub const BODY_MAX: usize = 10_000;
/// How far ahead of the server's clock a user may date an activity (clock skew of a client);
/// what lies in the future is a task's due date, not an activity's time.
pub const FUTURE_SKEW_MINUTES: i64 = 5;

nexus_kernel::word_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ActivityKind: invalid "messaging.invalid_activity_kind", param "kind" {
        Note = "note",
        Task = "task",
        Call = "call",
        Message = "message",
        /// A lead captured on a published page (`page.lead_captured`).
        PageLead = "lead",
        /// A store order of the contact (commerce's `order.created`).
        Purchase = "purchase",
        /// Money given back on one of the contact's orders (commerce's `order.refunded`).
        Refund = "refund",
        StageChange = "stage_change",
        Consent = "consent",
        Merge = "merge",
        Import = "import",
        Deal = "deal",
    }
}

impl ActivityKind {
    /// Kinds a person adds through the API; the others are facts only the platform records.
    pub const fn user_written(self) -> bool {
        matches!(self, Self::Note | Self::Task | Self::Call)
    }
}

/// One entry of a timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: uuid::Uuid,
    pub contact_id: uuid::Uuid,
    pub kind: ActivityKind,
    pub body: String,
    /// Kind-specific details (the old and new stage, the purchase's amount …).
    pub data: serde_json::Value,
    /// `Principal::actor()` of who did it, or `system`.
    pub actor: String,
    pub due_at: Option<DateTime<Utc>>,
    pub assignee_id: Option<UserId>,
    pub done_at: Option<DateTime<Utc>>,
    pub occurred_at: DateTime<Utc>,
}

/// An activity to store, checked (by [`ActivityInput::check`] or built by the platform).
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub contact_id: uuid::Uuid,
    pub kind: ActivityKind,
    pub body: String,
    pub data: serde_json::Value,
    pub actor: String,
    pub due_at: Option<DateTime<Utc>>,
    pub assignee_id: Option<UserId>,
    /// The source event's id, so an event delivered twice records one activity.
    pub source_key: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl NewActivity {
    /// A platform-written fact about `contact_id` happening now.
    pub fn fact(contact_id: uuid::Uuid, kind: ActivityKind, actor: String, data: serde_json::Value) -> NewActivity {
        NewActivity {
            contact_id,
            kind,
            body: String::new(),
            data,
            actor,
            due_at: None,
            assignee_id: None,
            source_key: None,
            occurred_at: Utc::now(),
        }
    }
}

/// What a person sends to add a note, task or call.
#[derive(Debug, Clone, Default)]
pub struct ActivityInput<'a> {
    pub kind: &'a str,
    pub body: &'a str,
    pub due_at: Option<DateTime<Utc>>,
    /// A workspace member (`usr_…` or a bare UUID); empty on a task: the caller.
    pub assignee_id: &'a str,
    /// When it happened; `None`: now.
    pub occurred_at: Option<DateTime<Utc>>,
}

impl ActivityInput<'_> {
    /// Checks the input of `actor` (whose user id becomes a task's default assignee) at `now`.
    pub fn check(
        &self,
        contact_id: uuid::Uuid,
        actor: String,
        caller: UserId,
        now: DateTime<Utc>,
    ) -> Result<NewActivity, Error> {
        let kind: ActivityKind = self.kind.trim().parse()?;
        if !kind.user_written() {
            return Err(Error::invalid("messaging.activity_kind_not_writable")
                .with_param("kind", kind.as_str())
                .with_violation("kind", "not_writable"));
        }
        let body = self.body.trim();
        if body.chars().count() > BODY_MAX || body.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t')) {
            return Err(Error::invalid("messaging.invalid_activity_body")
                .with_param("max", BODY_MAX.to_string())
                .with_violation("body", "invalid"));
        }
        // A note is its text; a call or task may be only its time and due date.
        if kind == ActivityKind::Note && body.is_empty() {
            return Err(Error::invalid("messaging.invalid_activity_body")
                .with_param("max", BODY_MAX.to_string())
                .with_violation("body", "required"));
        }
        let occurred_at = self.occurred_at.unwrap_or(now);
        if occurred_at > now + Duration::minutes(FUTURE_SKEW_MINUTES) {
            return Err(Error::invalid("messaging.activity_in_future").with_violation("occurred_at", "future"));
        }
        let (due_at, assignee_id) = if kind == ActivityKind::Task {
            let due = self
                .due_at
                .ok_or_else(|| Error::invalid("messaging.task_due_required").with_violation("due_at", "required"))?;
            let assignee =
                if self.assignee_id.trim().is_empty() { caller } else { member_id(self.assignee_id, "assignee_id")? };
            (Some(due), Some(assignee))
        } else {
            if self.due_at.is_some() || !self.assignee_id.trim().is_empty() {
                return Err(Error::invalid("messaging.task_fields_on_activity")
                    .with_param("kind", kind.as_str())
                    .with_violation(if self.due_at.is_some() { "due_at" } else { "assignee_id" }, "only_tasks"));
            }
            (None, None)
        };
        Ok(NewActivity {
            contact_id,
            kind,
            body: body.to_owned(),
            data: serde_json::Value::Object(serde_json::Map::new()),
            actor,
            due_at,
            assignee_id,
            source_key: None,
            occurred_at,
        })
    }
}

/// A workspace member's user id from a request (`usr_…` or the bare UUID).
pub fn member_id(raw: &str, field: &'static str) -> Result<UserId, Error> {
    UserId::parse(raw.trim())
        .map_err(|_| Error::invalid("messaging.invalid_member_id").with_violation(field, "invalid"))
}

/// Where a task list continues: open tasks come before done ones, each group by due date. The
/// newest-first `TimeKey` of other lists cannot express this order, hence its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskKey {
    pub done: bool,
    pub due_at: DateTime<Utc>,
    pub id: uuid::Uuid,
}

impl TaskKey {
    pub fn of(a: &Activity) -> TaskKey {
        TaskKey { done: a.done_at.is_some(), due_at: a.due_at.unwrap_or(a.occurred_at), id: a.id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: &str) -> ActivityInput<'_> {
        ActivityInput { kind, body: "Called about the order", ..Default::default() }
    }

    fn check(i: &ActivityInput<'_>) -> Result<NewActivity, Error> {
        i.check(uuid::Uuid::nil(), "usr_x".into(), UserId::from_uuid(uuid::Uuid::nil()), Utc::now())
    }

    #[test]
    fn people_write_notes_tasks_and_calls_only() {
        assert_eq!(check(&input("call")).unwrap().kind, ActivityKind::Call);
        for platform in ["message", "lead", "purchase", "refund", "stage_change", "deal"] {
            assert_eq!(check(&input(platform)).unwrap_err().code(), "messaging.activity_kind_not_writable");
        }
        assert_eq!(check(&input("meeting")).unwrap_err().code(), "messaging.invalid_activity_kind");
    }

    #[test]
    fn tasks_need_a_due_date_and_default_to_the_caller() {
        let e = check(&input("task")).unwrap_err();
        assert_eq!(e.code(), "messaging.task_due_required");
        let due = Utc::now() + Duration::days(2);
        let t = check(&ActivityInput { due_at: Some(due), ..input("task") }).unwrap();
        assert_eq!((t.due_at, t.assignee_id), (Some(due), Some(UserId::from_uuid(uuid::Uuid::nil()))));
        let other = UserId::new();
        let t = check(&ActivityInput { due_at: Some(due), assignee_id: &other.to_string(), ..input("task") }).unwrap();
        assert_eq!(t.assignee_id, Some(other));
        let bad = ActivityInput { due_at: Some(due), assignee_id: "someone", ..input("task") };
        assert_eq!(check(&bad).unwrap_err().code(), "messaging.invalid_member_id");
        let note = ActivityInput { due_at: Some(due), ..input("note") };
        assert_eq!(check(&note).unwrap_err().code(), "messaging.task_fields_on_activity");
    }

    #[test]
    fn bodies_and_times_are_bounded() {
        let long = "x".repeat(BODY_MAX + 1);
        assert_eq!(
            check(&ActivityInput { body: &long, ..input("note") }).unwrap_err().code(),
            "messaging.invalid_activity_body"
        );
        assert_eq!(
            check(&ActivityInput { body: "  ", ..input("note") }).unwrap_err().code(),
            "messaging.invalid_activity_body"
        );
        assert_eq!(
            check(&ActivityInput { body: "a\u{0}b", ..input("note") }).unwrap_err().code(),
            "messaging.invalid_activity_body"
        );
        let future = Some(Utc::now() + Duration::hours(1));
        assert_eq!(
            check(&ActivityInput { occurred_at: future, ..input("call") }).unwrap_err().code(),
            "messaging.activity_in_future"
        );
        let past = Utc::now() - Duration::days(3);
        assert_eq!(check(&ActivityInput { occurred_at: Some(past), ..input("call") }).unwrap().occurred_at, past);
    }
}
