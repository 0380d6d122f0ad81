//! The post calendar as iCalendar (RFC 5545) for calendar apps: one event per post at its time,
//! its platforms and text in the summary, its links in the description. Text is escaped and
//! lines folded at 75 octets as the RFC requires.

use chrono::{DateTime, Utc};

/// One post on the calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEntry {
    pub uid: String,
    pub at: DateTime<Utc>,
    pub summary: String,
    pub description: String,
    /// draft, pending_approval, scheduled, cancelled.
    pub status: String,
    pub updated: DateTime<Utc>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// TEXT escaping: backslash, semicolon, comma and line breaks.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A content line folded at 75 octets (never inside a character), CRLF-terminated.
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
}

/// The calendar named `name` with `entries`, stamped `now`.
pub fn render(name: &str, entries: &[CalendarEntry], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    for l in ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//NexusOne//Social calendar//EN", "CALSCALE:GREGORIAN"] {
        line(&mut out, l);
    }
    line(&mut out, &format!("X-WR-CALNAME:{}", escape(name)));
    for e in entries {
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}", escape(&e.uid)));
        line(&mut out, &format!("DTSTAMP:{}", stamp(now)));
        line(&mut out, &format!("DTSTART:{}", stamp(e.at)));
        line(&mut out, "DURATION:PT15M");
        line(&mut out, &format!("LAST-MODIFIED:{}", stamp(e.updated)));
        line(&mut out, &format!("SUMMARY:{}", escape(&e.summary)));
        if !e.description.is_empty() {
            line(&mut out, &format!("DESCRIPTION:{}", escape(&e.description)));
        }
        let status = match e.status.as_str() {
            "scheduled" => "CONFIRMED",
            "cancelled" => "CANCELLED",
            _ => "TENTATIVE",
        };
        line(&mut out, &format!("STATUS:{status}"));
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn events_are_escaped_and_long_lines_folded() {
        let e = CalendarEntry {
            uid: "post_1@nexusone".into(),
            at: at("2026-03-01T15:00:00Z"),
            summary: "instagram, facebook: Sale; 50% off\\today\nonly".into(),
            description: "ñ".repeat(60),
            status: "scheduled".into(),
            updated: at("2026-02-01T10:00:00Z"),
        };
        let ics = render("Spring, launches", &[e], at("2026-02-02T00:00:00Z"));
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(ics.contains("X-WR-CALNAME:Spring\\, launches\r\n"));
        assert!(ics.contains("DTSTART:20260301T150000Z\r\n"));
        assert!(ics.contains("SUMMARY:instagram\\, facebook: Sale\\; 50% off\\\\today\\nonly\r\n"));
        assert!(ics.contains("STATUS:CONFIRMED\r\n"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        for l in ics.split("\r\n") {
            assert!(l.len() <= 75, "{l:?} is {} octets", l.len());
        }
        // Unfolding restores the description whole.
        let unfolded = ics.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("DESCRIPTION:{}\r\n", "ñ".repeat(60))));
    }
}
