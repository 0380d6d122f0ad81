//! Uploaded post media: what a file is, read from its own bytes as they stream in (never from
//! what the client claims). Pictures (JPEG, PNG, WebP) by their header; videos (MP4, QuickTime)
//! by their `moov` box: the file's top-level boxes are walked as the bytes pass, only `moov` is
//! kept (bounded), so a large `mdat` costs nothing and the `moov` may come first or last.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind};
use uuid::Uuid;

use super::posts::MediaKind;

/// An item of a workspace's media library.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaItem {
    pub id: Uuid,
    pub name: String,
    pub facts: Facts,
    pub bytes: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    pub storage_key: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// What a file was measured to be.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub kind: MediaKind,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    /// Videos only.
    pub duration_secs: f64,
}

/// The most characters of an item's name.
pub const MAX_NAME_CHARS: usize = 200;

/// A name as given: trimmed, 1 to 200 characters, no control characters.
pub fn check_name(raw: &str) -> Result<String, Error> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::invalid("ads.media_name_invalid")
            .with_param("max", MAX_NAME_CHARS.to_string())
            .with_violation("name", "invalid"));
    }
    Ok(name.to_owned())
}

/// The bytes of a picture kept for reading its size: a JPEG's frame header follows its EXIF and
/// thumbnails, which stay well under this.
const IMAGE_HEAD_BYTES: usize = 1024 * 1024;
/// The largest `moov` read (sample tables of hours of video stay under it).
pub const MAX_MOOV_BYTES: u64 = 32 * 1024 * 1024;
/// Bytes needed to tell a type.
const SNIFF_BYTES: usize = 16;

/// The type the first bytes of a file show; `None` for anything not taken.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        // QuickTime files name their own brand; every other ISO brand is read as MP4.
        return Some(if &head[8..12] == b"qt  " { "video/quicktime" } else { "video/mp4" });
    }
    None
}

/// A declared Content-Type as compared: without parameters, lower case, common aliases folded.
pub fn normalize_type(declared: &str) -> String {
    let t = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match t.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg".into(),
        "video/mov" => "video/quicktime".into(),
        _ => t,
    }
}

pub fn unsupported(why: &str) -> Error {
    Error::new(ErrorKind::UnsupportedMediaType, "ads.media_unsupported_type").with_violation("content_type", why)
}

pub fn unreadable(detail: &str) -> Error {
    Error::invalid("ads.media_unreadable").with_param("detail", detail.to_owned()).with_violation("data", "unreadable")
}

pub fn too_large(max: u64) -> Error {
    Error::new(ErrorKind::PayloadTooLarge, "ads.media_too_large")
        .with_param("max", max.to_string())
        .with_param("max_mb", (max / (1024 * 1024)).to_string())
}

/// Size limits by kind.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_image_bytes: u64,
    pub max_video_bytes: u64,
}

/// Reads a file's facts as its bytes stream past. Refuses as early as it can: an unknown type
/// or one other than declared after the first bytes, a size over its kind's limit at once.
#[derive(Debug)]
pub struct Probe {
    declared: String,
    limits: Limits,
    content_type: Option<&'static str>,
    head: Vec<u8>,
    seen: u64,
    boxes: BoxWalker,
}

impl Probe {
    pub fn new(declared: &str, limits: Limits) -> Self {
        Self {
            declared: normalize_type(declared),
            limits,
            content_type: None,
            head: Vec::new(),
            seen: 0,
            boxes: BoxWalker::default(),
        }
    }

    fn is_video(&self) -> bool {
        self.content_type.is_some_and(|t| t.starts_with("video/"))
    }

    /// Takes the next bytes; an error refuses the file.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.seen += chunk.len() as u64;
        if self.is_video() {
            self.boxes.push(chunk);
            return self.check_size();
        }
        let before = self.head.len();
        if before < IMAGE_HEAD_BYTES {
            self.head.extend_from_slice(&chunk[..chunk.len().min(IMAGE_HEAD_BYTES - before)]);
        }
        if self.content_type.is_none() && self.head.len() >= SNIFF_BYTES {
            let kept = self.head.len() - before;
            self.decide()?;
            if self.is_video() {
                self.boxes.push(&chunk[kept..]);
            }
        }
        self.check_size()
    }

    /// Settles the type from the head; a video's box walk then starts from the head's bytes
    /// (all the file so far but what the head did not keep of the last chunk).
    fn decide(&mut self) -> Result<(), Error> {
        let found = sniff(&self.head).ok_or_else(|| unsupported("unsupported"))?;
        if self.declared != found {
            return Err(unsupported("mismatch"));
        }
        self.content_type = Some(found);
        if self.is_video() {
            let head = std::mem::take(&mut self.head);
            self.boxes.push(&head);
        }
        Ok(())
    }

    fn max(&self) -> u64 {
        if self.is_video() { self.limits.max_video_bytes } else { self.limits.max_image_bytes }
    }

    fn check_size(&self) -> Result<(), Error> {
        if self.content_type.is_some() && self.seen > self.max() { Err(too_large(self.max())) } else { Ok(()) }
    }

    /// The facts once every byte has passed.
    pub fn finish(mut self) -> Result<Facts, Error> {
        if self.content_type.is_none() {
            self.decide()?;
        }
        let content_type = self.content_type.unwrap_or_default();
        if !self.is_video() {
            let size = imagesize::blob_size(&self.head).map_err(|_| unreadable("no picture size"))?;
            let side = |n: usize| u32::try_from(n).ok().filter(|n| *n > 0);
            let (Some(width), Some(height)) = (side(size.width), side(size.height)) else {
                return Err(unreadable("no picture size"));
            };
            return Ok(Facts {
                kind: MediaKind::Image,
                content_type: content_type.into(),
                width,
                height,
                duration_secs: 0.0,
            });
        }
        let moov = self.boxes.finish().map_err(unreadable)?;
        let movie = read_moov(&moov).map_err(unreadable)?;
        Ok(Facts {
            kind: MediaKind::Video,
            content_type: content_type.into(),
            width: movie.width,
            height: movie.height,
            duration_secs: movie.duration_secs,
        })
    }
}

/// Walks a file's top-level ISO-BMFF boxes as bytes arrive, keeping the first `moov`'s body.
#[derive(Debug, Default)]
struct BoxWalker {
    header: Vec<u8>,
    /// Body bytes left of the box being passed (`None`: reading a header).
    remaining: Option<u64>,
    /// The box runs to the end of the file (size 0).
    to_end: bool,
    capture: Option<Vec<u8>>,
    moov: Option<Vec<u8>>,
    broken: Option<&'static str>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl BoxWalker {
    fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.broken.is_none() {
            if let Some(left) = self.remaining {
                let take =
                    if self.to_end { data.len() } else { data.len().min(usize::try_from(left).unwrap_or(usize::MAX)) };
                if let Some(c) = self.capture.as_mut() {
                    c.extend_from_slice(&data[..take]);
                    if c.len() as u64 > MAX_MOOV_BYTES {
                        self.broken = Some("moov box too large");
                    }
                }
                data = &data[take..];
                if !self.to_end {
                    self.remaining = Some(left - take as u64);
                    if left == take as u64 {
                        self.end_box();
                    }
                }
                continue;
            }
            let need = if self.header.len() >= 8 && be32(&self.header, 0) == Some(1) { 16 } else { 8 };
            let take = (need - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.header.len() == 8 && be32(&self.header, 0) == Some(1) {
                continue;
            }
            if self.header.len() == need {
                self.start_box();
            }
        }
    }

    fn start_box(&mut self) {
        let h = std::mem::take(&mut self.header);
        let size = u64::from(be32(&h, 0).unwrap_or(0));
        let total = match size {
            1 => be64(&h, 8).unwrap_or(0),
            0 => {
                self.to_end = true;
                u64::MAX
            }
            n => n,
        };
        if total < h.len() as u64 {
            self.broken = Some("malformed box size");
            return;
        }
        let body = total - h.len() as u64;
        if &h[4..8] == b"moov" && self.moov.is_none() {
            if !self.to_end && body > MAX_MOOV_BYTES {
                self.broken = Some("moov box too large");
                return;
            }
            self.capture = Some(Vec::with_capacity(usize::try_from(body.min(1024 * 1024)).unwrap_or(0)));
        }
        self.remaining = Some(body);
        if body == 0 {
            self.end_box();
        }
    }

    fn end_box(&mut self) {
        if let Some(c) = self.capture.take() {
            self.moov = Some(c);
        }
        self.remaining = None;
    }

    fn finish(mut self) -> Result<Vec<u8>, &'static str> {
        if let Some(why) = self.broken {
            return Err(why);
        }
        if self.to_end {
            self.end_box();
        } else if self.remaining.is_some_and(|n| n > 0) || !self.header.is_empty() {
            return Err("the file is cut short");
        }
        self.moov.ok_or("no moov box")
    }
}

/// What a `moov` says of the movie.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Movie {
    pub width: u32,
    pub height: u32,
    pub duration_secs: f64,
}

/// A box: its type and body.
type Mp4Box<'a> = ([u8; 4], &'a [u8]);

/// The child boxes of a box body.
fn children(body: &[u8]) -> Result<Vec<Mp4Box<'_>>, &'static str> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < body.len() {
        let size = be32(body, at).ok_or("malformed box")? as usize;
        let kind: [u8; 4] = body.get(at + 4..at + 8).ok_or("malformed box")?.try_into().map_err(|_| "malformed box")?;
        let (header, total) = match size {
            1 => (16, usize::try_from(be64(body, at + 8).ok_or("malformed box")?).map_err(|_| "malformed box")?),
            0 => (8, body.len() - at),
            n => (8, n),
        };
        let end = at.checked_add(total).filter(|e| *e <= body.len() && total >= header).ok_or("malformed box")?;
        out.push((kind, &body[at + header..end]));
        at = end;
    }
    Ok(out)
}

fn child<'a>(boxes: &[Mp4Box<'a>], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes.iter().find(|(k, _)| k == kind).map(|(_, b)| *b)
}

/// A `mvhd`'s or `mehd`'s version-dependent field: 32 bits at `v0` in version 0, else 64 at `v1`.
fn versioned(b: &[u8], v0: usize, v1: usize) -> Option<u64> {
    if *b.first()? == 0 { be32(b, v0).map(u64::from) } else { be64(b, v1) }
}

/// The duration (`mvhd`, or `mvex/mehd` for fragmented files) and the first video track's
/// picture size (`tkhd`, turned by its matrix when the track is rotated a quarter turn).
pub fn read_moov(moov: &[u8]) -> Result<Movie, &'static str> {
    let boxes = children(moov)?;
    let mvhd = child(&boxes, b"mvhd").ok_or("no mvhd box")?;
    let timescale = if mvhd.first() == Some(&0) { be32(mvhd, 12) } else { be32(mvhd, 20) }.ok_or("short mvhd")?;
    let mut duration = versioned(mvhd, 16, 24).ok_or("short mvhd")?;
    if duration == 0 || duration == u64::from(u32::MAX) {
        duration = child(&boxes, b"mvex")
            .and_then(|m| children(m).ok())
            .and_then(|m| child(&m, b"mehd").and_then(|h| versioned(h, 4, 4)))
            .unwrap_or(0);
    }
    if timescale == 0 || duration == 0 {
        return Err("no duration");
    }
    let duration_secs = duration as f64 / f64::from(timescale);
    for (kind, trak) in &boxes {
        if kind != b"trak" {
            continue;
        }
        let parts = children(trak)?;
        let handler = child(&parts, b"mdia")
            .and_then(|m| children(m).ok())
            .and_then(|m| child(&m, b"hdlr").and_then(|h| h.get(8..12)).map(<[u8]>::to_vec));
        if handler.as_deref() != Some(b"vide") {
            continue;
        }
        let tkhd = child(&parts, b"tkhd").ok_or("no tkhd box")?;
        // After version/flags, times, ids and duration: reserved (8), layer, group, volume,
        // reserved (2 each), the matrix (36), then width and height in 16.16 fixed point.
        let matrix = if tkhd.first() == Some(&0) { 40 } else { 52 };
        let a = be32(tkhd, matrix).ok_or("short tkhd")?;
        let d = be32(tkhd, matrix + 16).ok_or("short tkhd")?;
        let w = be32(tkhd, matrix + 36).ok_or("short tkhd")? >> 16;
        let h = be32(tkhd, matrix + 40).ok_or("short tkhd")? >> 16;
        if w == 0 || h == 0 {
            return Err("the video track has no picture size");
        }
        let quarter_turn = a == 0 && d == 0;
        let (width, height) = if quarter_turn { (h, w) } else { (w, h) };
        return Ok(Movie { width, height, duration_secs });
    }
    Err("no video track")
}

/// Builders of small valid files, for tests here and in the integration tests.
pub mod samples {
    /// A box of `kind` around `body`.
    pub fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(body.len() + 8).unwrap_or(u32::MAX).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// A PNG header of `w`×`h` (all a size reader needs).
    pub fn png(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        v
    }

    /// An MP4 of `w`×`h` lasting `secs` (timescale 1000), its `moov` before or after `mdat_bytes`
    /// of data, the track turned a quarter when `rotated`.
    pub fn mp4(w: u32, h: u32, secs: u32, mdat_bytes: usize, moov_first: bool, rotated: bool) -> Vec<u8> {
        let ftyp = mp4_box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41");
        let mut mvhd = vec![0u8; 4];
        mvhd.extend_from_slice(&[0; 8]);
        mvhd.extend_from_slice(&1000u32.to_be_bytes());
        mvhd.extend_from_slice(&(secs * 1000).to_be_bytes());
        mvhd.extend_from_slice(&[0; 80]);
        let mut tkhd = vec![0u8, 0, 0, 3];
        tkhd.extend_from_slice(&[0; 20]);
        tkhd.extend_from_slice(&[0; 16]);
        let (a, b, c, d): (u32, u32, u32, u32) =
            if rotated { (0, 0x0001_0000, 0xFFFF_0000, 0) } else { (0x0001_0000, 0, 0, 0x0001_0000) };
        for m in [a, b, 0, c, d, 0, 0, 0, 0x4000_0000] {
            tkhd.extend_from_slice(&m.to_be_bytes());
        }
        tkhd.extend_from_slice(&(w << 16).to_be_bytes());
        tkhd.extend_from_slice(&(h << 16).to_be_bytes());
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(b"vide");
        hdlr.extend_from_slice(&[0; 13]);
        let mdia = mp4_box(b"mdia", &mp4_box(b"hdlr", &hdlr));
        let trak = mp4_box(b"trak", &[mp4_box(b"tkhd", &tkhd), mdia].concat());
        let moov = mp4_box(b"moov", &[mp4_box(b"mvhd", &mvhd), trak].concat());
        let mdat = mp4_box(b"mdat", &vec![0x5A; mdat_bytes]);
        if moov_first { [ftyp, moov, mdat].concat() } else { [ftyp, mdat, moov].concat() }
    }
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

    const LIMITS: Limits = Limits { max_image_bytes: 1000, max_video_bytes: 100_000 };

    fn probe(declared: &str, data: &[u8], chunk: usize) -> Result<Facts, Error> {
        let mut p = Probe::new(declared, LIMITS);
        for c in data.chunks(chunk.max(1)) {
            p.push(c)?;
        }
        p.finish()
    }

    fn webp(w: u32, h: u32) -> Vec<u8> {
        let mut body = b"WEBPVP8X".to_vec();
        body.extend_from_slice(&10u32.to_le_bytes());
        body.extend_from_slice(&[0; 4]);
        body.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        body.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        v.extend_from_slice(&body);
        v
    }

    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        v.extend_from_slice(b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00");
        v.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
        v
    }

    #[test]
    fn pictures_are_measured_from_their_bytes_in_any_chunking() {
        for chunk in [1, 7, 4096] {
            let f = probe("image/png", &png(1080, 1350), chunk).unwrap();
            assert_eq!(
                (f.kind, f.content_type.as_str(), f.width, f.height),
                (MediaKind::Image, "image/png", 1080, 1350)
            );
            let f = probe("image/jpg", &jpeg(640, 480), chunk).unwrap();
            assert_eq!((f.content_type.as_str(), f.width, f.height), ("image/jpeg", 640, 480));
            let f = probe("image/webp; q=1", &webp(300, 200), chunk).unwrap();
            assert_eq!((f.content_type.as_str(), f.width, f.height), ("image/webp", 300, 200));
        }
    }

    #[test]
    fn videos_are_measured_from_moov_wherever_it_is() {
        for (moov_first, chunk) in [(true, 5), (false, 5), (false, 3000), (true, 1 << 20)] {
            let f = probe("video/mp4", &mp4(1920, 1080, 12, 5000, moov_first, false), chunk).unwrap();
            assert_eq!((f.kind, f.width, f.height, f.duration_secs), (MediaKind::Video, 1920, 1080, 12.0));
        }
        let f = probe("video/mp4", &mp4(1920, 1080, 3, 10, true, true), 64).unwrap();
        assert_eq!((f.width, f.height), (1080, 1920), "a phone's portrait video is turned by its matrix");
    }

    #[test]
    fn declared_types_must_match_and_garbage_is_refused() {
        let code = |r: Result<Facts, Error>| r.unwrap_err().code().to_owned();
        assert_eq!(code(probe("image/jpeg", &png(10, 10), 3)), "ads.media_unsupported_type");
        assert_eq!(code(probe("", &png(10, 10), 3)), "ads.media_unsupported_type");
        assert_eq!(
            code(probe("image/png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", 3)),
            "ads.media_unsupported_type"
        );
        assert_eq!(code(probe("image/gif", b"GIF89a", 3)), "ads.media_unsupported_type", "too short to tell");
        assert_eq!(code(probe("video/quicktime", &mp4(2, 2, 1, 1, true, false), 3)), "ads.media_unsupported_type");
    }

    #[test]
    fn limits_apply_by_kind_as_bytes_arrive() {
        let mut big = png(10, 10);
        big.resize(1001, 0);
        let err = probe("image/png", &big, 100).unwrap_err();
        assert_eq!((err.code(), err.kind()), ("ads.media_too_large", ErrorKind::PayloadTooLarge));
        assert!(probe("video/mp4", &mp4(10, 10, 1, 5000, false, false), 100).is_ok(), "over the picture limit");
        assert_eq!(
            probe("video/mp4", &mp4(10, 10, 1, 100_001, true, false), 4096).unwrap_err().code(),
            "ads.media_too_large"
        );
    }

    #[test]
    fn broken_videos_are_unreadable() {
        let whole = mp4(640, 360, 2, 100, false, false);
        let cut = &whole[..whole.len() - 10];
        assert_eq!(probe("video/mp4", cut, 50).unwrap_err().code(), "ads.media_unreadable");
        let no_moov = [mp4_box(b"ftyp", b"isom\x00\x00\x02\x00isom"), mp4_box(b"mdat", &[1; 40])].concat();
        assert_eq!(probe("video/mp4", &no_moov, 50).unwrap_err().code(), "ads.media_unreadable");
        let mut bad_size = mp4(640, 360, 2, 10, true, false);
        let n = bad_size.len();
        bad_size[n - 18..n - 14].copy_from_slice(&3u32.to_be_bytes());
        assert!(probe("video/mp4", &bad_size, 50).is_err());
        assert_eq!(read_moov(&[0, 0, 0, 9, b'm', b'v']), Err("malformed box"));
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("  summer.mp4 ").unwrap(), "summer.mp4");
        for bad in ["", "   ", "a\nb", &"x".repeat(201)] {
            assert_eq!(check_name(bad).unwrap_err().code(), "ads.media_name_invalid", "{bad:?}");
        }
    }
}
