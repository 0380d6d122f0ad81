//! Types and rules of the content service, free of I/O: content kinds and their length limits,
//! generation inputs and their validation, text fitting, page sections and slugs, agents.

pub mod agents;
pub mod generation;
pub mod images;
pub mod pages;
pub mod prompts;
pub mod render;
pub mod text;
pub mod translation;

use nexus_kernel::Error;

nexus_kernel::typed_id!(
    /// A stored generation (AI copy).
    GenerationId,
    "gen"
);
nexus_kernel::typed_id!(
    /// A magic landing page.
    PageId,
    "pg"
);
nexus_kernel::typed_id!(
    /// A lead captured by a published page's form.
    LeadId,
    "lead"
);
nexus_kernel::typed_id!(
    /// An image asset (generated or placeholder).
    ImageId,
    "img"
);
nexus_kernel::typed_id!(
    /// A custom AI assistant.
    AgentId,
    "agt"
);
nexus_kernel::typed_id!(
    /// One agent's conversation with one contact.
    ConversationId,
    "conv"
);

/// Parses an id from a request; a malformed id reads as "not found" so ids cannot be probed.
pub fn parse_id<T>(
    s: &str,
    parse: fn(&str) -> Result<T, nexus_kernel::ids::IdParseError>,
    what: &'static str,
) -> Result<T, Error> {
    parse(s.trim()).map_err(|_| Error::not_found(what))
}

/// Checks a free-text field: trimmed, at most `max` characters, no control characters except
/// line breaks and tabs. Returns the trimmed value.
pub fn text_field(field: &'static str, value: &str, max: usize, required: bool) -> Result<String, Error> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(Error::invalid("content.field_required")
            .with_param("field", field)
            .with_violation(field, "required"));
    }
    if v.chars().count() > max {
        return Err(Error::invalid("content.field_too_long")
            .with_param("field", field)
            .with_param("max", max.to_string())
            .with_violation(field, "too_long"));
    }
    if v.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(Error::invalid("content.field_invalid")
            .with_param("field", field)
            .with_violation(field, "invalid"));
    }
    Ok(v.to_owned())
}
