//! WhatsApp chatbots: keyword and regex rules, a menu of buttons or a list, business hours in the
//! workspace's time zone with an away message, and handoff to a person.

use chrono::{DateTime, Datelike, NaiveTime, Utc};
use nexus_kernel::Error;
use serde::{Deserialize, Serialize};

use crate::domain::consent::fold;
use crate::domain::whatsapp::{Choice, Content, one_line, plain_text};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// keyword (the whole message, case and accents folded) or regex.
    pub kind: String,
    pub pattern: String,
    /// Text answered; empty with `menu` set: the menu is answered.
    #[serde(default)]
    pub reply: String,
    #[serde(default)]
    pub menu: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuItem {
    pub id: String,
    pub title: String,
    /// What choosing it answers.
    pub reply: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hours {
    /// 0 = Monday … 6 = Sunday.
    pub day: u32,
    pub open: String,
    pub close: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bot {
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub menu_text: String,
    #[serde(default)]
    pub menu: Vec<MenuItem>,
    /// IANA time zone of the business hours.
    pub time_zone: String,
    /// Empty: always open.
    #[serde(default)]
    pub hours: Vec<Hours>,
    #[serde(default)]
    pub away_message: String,
    /// The word that hands the conversation to a person (default "agent").
    pub handoff_keyword: String,
    pub handoff_reply: String,
    /// A content agent (`agt_…`) that answers what no rule matches; empty: such messages wait
    /// for a person.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent_id: String,
    /// The member (`usr_…`) handed conversations go to; empty: the member with the fewest open
    /// assigned conversations.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub handoff_assignee: String,
}

fn invalid(field: &str) -> Error {
    Error::invalid("messaging.whatsapp_bot_invalid").with_param("field", field)
}

/// Longest answer (WhatsApp's text limit), menu text (an interactive body) and list of hours.
const REPLY_MAX: usize = 4_096;
const MENU_TEXT_MAX: usize = 1_024;
const HOURS_MAX: usize = 50;

/// `HH:MM`, two digits each (chrono alone would also take `9:00`).
fn time(s: &str) -> Option<NaiveTime> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

impl Bot {
    pub fn check(&self) -> Result<(), Error> {
        if self.rules.len() > 100 {
            return Err(invalid("rules"));
        }
        for r in &self.rules {
            let ok = one_line(&r.pattern)
                && r.pattern.chars().count() <= 100
                && match r.kind.as_str() {
                    "keyword" => !fold(&r.pattern).is_empty(),
                    "regex" => regex::RegexBuilder::new(&r.pattern).size_limit(1 << 16).build().is_ok(),
                    _ => false,
                };
            let answer_ok = plain_text(&r.reply)
                && r.reply.chars().count() <= REPLY_MAX
                && if r.menu { !self.menu.is_empty() } else { !r.reply.trim().is_empty() };
            if !ok || !answer_ok {
                return Err(invalid("rules"));
            }
        }
        if !plain_text(&self.menu_text) || self.menu_text.chars().count() > MENU_TEXT_MAX {
            return Err(invalid("menu_text"));
        }
        if !self.menu.is_empty() {
            let content = self.menu_content();
            content.check().map_err(|_| invalid("menu"))?;
            let item_ok = |m: &MenuItem| {
                one_line(&m.id)
                    && m.id.chars().count() <= 200
                    && one_line(&m.title)
                    && plain_text(&m.reply)
                    && !m.reply.trim().is_empty()
                    && m.reply.chars().count() <= REPLY_MAX
            };
            if !self.menu.iter().all(item_ok) {
                return Err(invalid("menu"));
            }
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid("time_zone"));
        }
        if self.hours.len() > HOURS_MAX {
            return Err(invalid("hours"));
        }
        for h in &self.hours {
            match (time(&h.open), time(&h.close)) {
                (Some(o), Some(c)) if h.day <= 6 && o < c => {}
                _ => return Err(invalid("hours")),
            }
        }
        let away_ok = plain_text(&self.away_message) && self.away_message.chars().count() <= REPLY_MAX;
        if !away_ok || (!self.hours.is_empty() && self.away_message.trim().is_empty()) {
            return Err(invalid("away_message"));
        }
        let keyword_ok = one_line(&self.handoff_keyword)
            && self.handoff_keyword.chars().count() <= 100
            && !fold(&self.handoff_keyword).is_empty();
        let reply_ok = plain_text(&self.handoff_reply)
            && !self.handoff_reply.trim().is_empty()
            && self.handoff_reply.chars().count() <= REPLY_MAX;
        if !keyword_ok || !reply_ok {
            return Err(invalid("handoff"));
        }
        let id_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if self.agent_id.len() > 64 || !self.agent_id.chars().all(id_char) {
            return Err(invalid("agent_id"));
        }
        self.handoff_assignee()?;
        Ok(())
    }

    /// The configured assignee of handed-over conversations, if any (its membership is the use
    /// case's to check).
    pub fn handoff_assignee(&self) -> Result<Option<nexus_kernel::ids::UserId>, Error> {
        if self.handoff_assignee.is_empty() {
            return Ok(None);
        }
        nexus_kernel::ids::UserId::parse(&self.handoff_assignee).map(Some).map_err(|_| invalid("handoff_assignee"))
    }

    /// The menu as an interactive message: buttons up to three items, a list beyond.
    pub fn menu_content(&self) -> Content {
        let items: Vec<Choice> = self
            .menu
            .iter()
            .map(|m| Choice { id: m.id.clone(), title: m.title.clone(), description: String::new() })
            .collect();
        let body = if self.menu_text.trim().is_empty() { "…".to_owned() } else { self.menu_text.clone() };
        if items.len() <= 3 {
            Content::Interactive { body, buttons: items, list_button: String::new(), rows: vec![] }
        } else {
            Content::Interactive { body, buttons: vec![], list_button: "Menu".into(), rows: items }
        }
    }

    /// Whether `now` falls in the business hours.
    pub fn open_at(&self, now: DateTime<Utc>) -> bool {
        if self.hours.is_empty() {
            return true;
        }
        let Ok(tz) = self.time_zone.parse::<chrono_tz::Tz>() else { return true };
        let local = now.with_timezone(&tz);
        let day = local.weekday().num_days_from_monday();
        let t = local.time();
        self.hours
            .iter()
            .any(|h| h.day == day && matches!((time(&h.open), time(&h.close)), (Some(o), Some(c)) if o <= t && t < c))
    }

    /// What the bot does with an inbound message.
    pub fn decide(&self, text: &str, reply_id: &str, now: DateTime<Utc>) -> Decision {
        if fold(text) == fold(&self.handoff_keyword) {
            return Decision::Handoff(self.handoff_reply.clone());
        }
        if !self.open_at(now) {
            return Decision::Reply(Content::Text(self.away_message.clone()));
        }
        if !reply_id.is_empty()
            && let Some(m) = self.menu.iter().find(|m| m.id == reply_id)
        {
            return Decision::Reply(Content::Text(m.reply.clone()));
        }
        let folded = fold(text);
        for r in &self.rules {
            let hit = match r.kind.as_str() {
                "keyword" => folded == fold(&r.pattern),
                _ => regex::RegexBuilder::new(&r.pattern)
                    .case_insensitive(true)
                    .size_limit(1 << 16)
                    .build()
                    .is_ok_and(|re| re.is_match(text)),
            };
            if hit {
                return Decision::Reply(if r.menu { self.menu_content() } else { Content::Text(r.reply.clone()) });
            }
        }
        Decision::Fallback
    }
}

/// The bot's answer to one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Reply(Content),
    Handoff(String),
    /// No rule matched: the AI agent answers, if one is set.
    Fallback,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot() -> Bot {
        Bot {
            rules: vec![
                Rule { kind: "keyword".into(), pattern: "menu".into(), reply: String::new(), menu: true },
                Rule {
                    kind: "regex".into(),
                    pattern: r"\bprice|precio\b".into(),
                    reply: "From 10 €".into(),
                    menu: false,
                },
            ],
            menu_text: "How can we help?".into(),
            menu: vec![
                MenuItem { id: "hours".into(), title: "Opening hours".into(), reply: "9 to 6".into() },
                MenuItem { id: "where".into(), title: "Where are you".into(), reply: "Main St 1".into() },
            ],
            time_zone: "Europe/Madrid".into(),
            hours: vec![],
            away_message: String::new(),
            handoff_keyword: "agent".into(),
            handoff_reply: "A person will answer soon.".into(),
            agent_id: String::new(),
            handoff_assignee: String::new(),
        }
    }

    #[test]
    fn rules_menus_and_handoff() {
        let b = bot();
        b.check().unwrap();
        let now = Utc::now();
        assert!(matches!(b.decide("MENU", "", now), Decision::Reply(Content::Interactive { .. })));
        assert_eq!(b.decide("what's the price?", "", now), Decision::Reply(Content::Text("From 10 €".into())));
        assert_eq!(b.decide("Opening hours", "hours", now), Decision::Reply(Content::Text("9 to 6".into())));
        assert_eq!(b.decide("Agent", "", now), Decision::Handoff("A person will answer soon.".into()));
        assert_eq!(b.decide("hello there", "", now), Decision::Fallback);
    }

    #[test]
    fn business_hours_in_the_time_zone() {
        let mut b = bot();
        b.hours = (0..5).map(|day| Hours { day, open: "09:00".into(), close: "18:00".into() }).collect();
        b.away_message = "We are closed.".into();
        b.check().unwrap();
        // Monday 2026-12-07 10:00 in Madrid is 09:00 UTC; 20:00 there is 19:00 UTC.
        let open = DateTime::parse_from_rfc3339("2026-12-07T09:00:00Z").unwrap().with_timezone(&Utc);
        let closed = DateTime::parse_from_rfc3339("2026-12-07T19:00:00Z").unwrap().with_timezone(&Utc);
        assert!(b.open_at(open) && !b.open_at(closed));
        assert_eq!(b.decide("price", "", closed), Decision::Reply(Content::Text("We are closed.".into())));
        b.time_zone = "Mars/Base".into();
        assert!(b.check().is_err());
    }

    #[test]
    fn a_handoff_assignee_is_a_user_id_or_nothing() {
        let mut b = bot();
        assert_eq!(b.handoff_assignee().unwrap(), None);
        let user = nexus_kernel::ids::UserId::new();
        b.handoff_assignee = user.to_string();
        assert!(b.check().is_ok());
        assert_eq!(b.handoff_assignee().unwrap(), Some(user));
        for bad in ["usr_nonsense", "agt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "someone"] {
            b.handoff_assignee = bad.to_owned();
            let e = b.check().unwrap_err();
            assert_eq!(e.code(), "messaging.whatsapp_bot_invalid", "{bad}");
        }
    }

    #[test]
    fn an_agent_id_is_an_id_or_nothing() {
        let mut b = bot();
        b.agent_id = "agt_0192f0c5c2b87c31a1f1e4f2b1a0c9d7".into();
        assert!(b.check().is_ok());
        for bad in ["agt 1", "agt_<script>", &"a".repeat(65)] {
            b.agent_id = bad.to_owned();
            assert_eq!(b.check().unwrap_err().code(), "messaging.whatsapp_bot_invalid", "{bad}");
        }
    }

    /// What the API document states of each field, the service holds too.
    #[test]
    fn every_text_is_bounded_and_printable() {
        let refused = |f: &dyn Fn(&mut Bot)| {
            let mut b = bot();
            f(&mut b);
            b.check().is_err()
        };
        assert!(refused(&|b| b.handoff_reply = "x".repeat(4_097)));
        assert!(refused(&|b| b.handoff_keyword = "a".repeat(101)));
        assert!(refused(&|b| b.handoff_keyword = "age\u{7}nt".into()));
        assert!(refused(&|b| b.away_message = "x".repeat(4_097)));
        assert!(refused(&|b| b.menu_text = "x".repeat(1_025)));
        assert!(refused(&|b| b.rules[0].pattern = "pri\u{0}ce".into()));
        assert!(refused(&|b| b.rules[0].pattern = "p".repeat(101)));
        assert!(refused(&|b| b.rules[0].reply = "bell\u{7}".into()));
        let hours = |open: &str, n: usize| {
            let open = open.to_owned();
            move |b: &mut Bot| {
                b.away_message = "Closed.".into();
                b.hours = vec![Hours { day: 1, open: open.clone(), close: "18:00".into() }; n];
            }
        };
        assert!(!refused(&hours("09:00", 50)));
        assert!(refused(&hours("9:00", 1)));
        assert!(refused(&hours("09:00", 51)));
        assert!(!refused(&|b| b.handoff_reply = "Two\nlines\tand a tab".into()));
    }
}
