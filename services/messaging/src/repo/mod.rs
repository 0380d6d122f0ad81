//! Every SQL statement of messaging. Functions take the caller's connection (a tenant
//! transaction from the use case), so RLS decides what they see; row types stay in here.

pub mod activities;
pub mod book;
pub mod broadcasts;
pub mod contacts;
pub mod deals;
pub mod imports;
pub mod inbox;
pub mod members;
pub mod segments;
pub mod webhooks;
pub mod whatsapp;

/// `%`, `_` and `\` matched literally inside a `LIKE` pattern.
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A unique index that refused a write, by name (`contacts_phone`, …).
fn violated_constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => d.constraint(),
        _ => None,
    }
}

/// A foreign key that refused a write or a delete.
fn violated_foreign_key(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23503"))
}
