//! Signed, expiring download links to videos, avatars and thumbnails: the platform's
//! [`nexus_platform::links`] (tokens over typed ids, `downloads.signing_keys`), and the ids a
//! thumbnail's link signs.

use uuid::Uuid;

pub use nexus_platform::links::{ByteRange, LinkError, LinkKeys};

/// What a thumbnail's link signs: the video's id under its own prefix, so a video's link and its
/// thumbnail's are not interchangeable.
const THUMBNAIL_PREFIX: &str = "vtn_";

pub fn thumbnail_id(video: Uuid) -> String {
    format!("{THUMBNAIL_PREFIX}{}", video.simple())
}

pub fn parse_thumbnail_id(id: &str) -> Option<Uuid> {
    let hex = id.strip_prefix(THUMBNAIL_PREFIX)?;
    (hex.len() == 32).then(|| Uuid::try_parse(hex).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_ids_are_not_video_ids() {
        let v = Uuid::now_v7();
        let id = thumbnail_id(v);
        assert_eq!(parse_thumbnail_id(&id), Some(v));
        assert_eq!(parse_thumbnail_id(&crate::domain::VideoId::from_uuid(v).to_string()), None);
        assert_eq!(parse_thumbnail_id("vtn_short"), None);
    }
}
