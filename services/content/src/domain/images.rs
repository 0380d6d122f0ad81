//! Images for pages and ads: what is stored, and the sizes a request may ask for.

use chrono::{DateTime, Utc};
use nexus_kernel::Error;

/// A stored image's description (its bytes are served separately).
#[derive(Debug, Clone)]
pub struct Image {
    pub id: uuid::Uuid,
    pub purpose: String,
    pub status: String,
    pub provider: String,
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub size_bytes: i64,
    pub prompt: String,
    pub created_at: DateTime<Utc>,
}

/// A requested side in pixels: 256–2048, a multiple of 64.
pub fn side(v: u32) -> Result<u32, Error> {
    if (256..=2048).contains(&v) && v.is_multiple_of(64) {
        Ok(v)
    } else {
        Err(Error::invalid("content.invalid_image_size").with_violation("width", "invalid"))
    }
}
