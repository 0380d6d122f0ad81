//! Uploaded avatars: what an image must be (a PNG or JPEG by its own bytes, not by what the
//! client claims; a size and dimensions a talking head can use), read without decoding it.

use nexus_kernel::Error;

/// The largest avatar accepted (it travels in one gRPC message).
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
pub const MIN_SIDE: u32 = 256;
pub const MAX_SIDE: u32 = 4096;

nexus_kernel::typed_id!(
    /// An uploaded avatar image.
    AvatarId,
    "avt"
);

/// What an uploaded image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

/// Width and height from a PNG's IHDR or a JPEG's start-of-frame; `None` for anything else.
pub fn probe(data: &[u8]) -> Option<ImageInfo> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") && data.get(12..16) == Some(b"IHDR") {
        return Some(ImageInfo { content_type: "image/png", width: be32(data, 16)?, height: be32(data, 20)? });
    }
    if !data.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    while at + 4 <= data.len() {
        if data[at] != 0xFF {
            return None;
        }
        let marker = data[at + 1];
        if marker == 0xFF {
            at += 1;
            continue;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            at += 2;
            continue;
        }
        let len = be16(data, at + 2)? as usize;
        let sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if sof {
            return Some(ImageInfo {
                content_type: "image/jpeg",
                height: be16(data, at + 5)?,
                width: be16(data, at + 7)?,
            });
        }
        if marker == 0xD9 || len < 2 {
            return None;
        }
        at += 2 + len;
    }
    None
}

/// Checks an upload: its declared type must match its bytes, and its size and sides the limits.
pub fn check(declared: &str, data: &[u8]) -> Result<ImageInfo, Error> {
    if data.len() > MAX_BYTES {
        return Err(Error::new(nexus_kernel::ErrorKind::PayloadTooLarge, "video.avatar_too_large")
            .with_param("max", MAX_BYTES.to_string()));
    }
    let info = probe(data).ok_or_else(|| {
        Error::new(nexus_kernel::ErrorKind::UnsupportedMediaType, "video.avatar_unsupported_type")
            .with_violation("content_type", "unsupported")
    })?;
    let declared = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let declared = if declared == "image/jpg" { "image/jpeg".to_owned() } else { declared };
    if !declared.is_empty() && declared != info.content_type {
        return Err(Error::new(nexus_kernel::ErrorKind::UnsupportedMediaType, "video.avatar_unsupported_type")
            .with_violation("content_type", "mismatch"));
    }
    let ok = |s: u32| (MIN_SIDE..=MAX_SIDE).contains(&s);
    if !ok(info.width) || !ok(info.height) {
        return Err(Error::invalid("video.avatar_bad_dimensions")
            .with_param("min", MIN_SIDE.to_string())
            .with_param("max", MAX_SIDE.to_string())
            .with_violation("data", "dimensions"));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn png(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        v
    }

    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46];
        v.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&[0; 12]);
        v
    }

    #[test]
    fn images_are_read_from_their_bytes() {
        assert_eq!(probe(&png(640, 480)), Some(ImageInfo { content_type: "image/png", width: 640, height: 480 }));
        assert_eq!(probe(&jpeg(800, 1200)), Some(ImageInfo { content_type: "image/jpeg", width: 800, height: 1200 }));
        assert_eq!(probe(b"GIF89a...."), None);
        assert_eq!(probe(&[0xFF, 0xD8, 0xFF]), None, "truncated");
    }

    #[test]
    fn uploads_are_checked() {
        assert!(check("image/png", &png(512, 512)).is_ok());
        assert!(check("", &jpeg(512, 700)).is_ok());
        assert_eq!(check("image/jpeg", &png(512, 512)).unwrap_err().code(), "video.avatar_unsupported_type");
        assert_eq!(check("image/png", b"<svg/>").unwrap_err().code(), "video.avatar_unsupported_type");
        assert_eq!(check("image/png", &png(100, 512)).unwrap_err().code(), "video.avatar_bad_dimensions");
        assert_eq!(check("image/png", &png(512, 5000)).unwrap_err().code(), "video.avatar_bad_dimensions");
        let mut big = png(512, 512);
        big.resize(MAX_BYTES + 1, 0);
        assert_eq!(check("image/png", &big).unwrap_err().code(), "video.avatar_too_large");
    }
}
