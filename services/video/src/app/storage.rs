//! Where finished videos, thumbnails and avatars are kept: the platform's object storage
//! (`[storage]`), under keys built from ids only.

use uuid::Uuid;

pub use nexus_platform::storage::{CopyError, Opened, Storage};

/// The key of a video's file.
pub fn key_for(tenant: Uuid, video: Uuid) -> String {
    format!("videos/{}/{}.mp4", tenant.simple(), video.simple())
}

/// The key of a video's thumbnail, beside its file.
pub fn thumbnail_key_for(tenant: Uuid, video: Uuid) -> String {
    format!("videos/{}/{}.jpg", tenant.simple(), video.simple())
}
