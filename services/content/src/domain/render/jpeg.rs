//! Local ad pictures: a real JPEG (what Instagram and Facebook take), drawn from a hash of the
//! prompt: a gradient of one of the placeholders' palettes with a few translucent shapes on it.
//! No text. Deterministic: same prompt and size, same bytes.

use jpeg_encoder::{ColorType, Encoder};
use nexus_kernel::Error;
use sha2::{Digest, Sha256};

use super::svg::PALETTES;

/// Quality of the local pictures: smooth shapes stay small at it.
const QUALITY: u8 = 85;

fn rgb(hex: &str) -> [f32; 3] {
    let channel = |i: usize| f32::from(u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap_or(0));
    [channel(0), channel(1), channel(2)]
}

/// A shape laid over the gradient: a disc, or a band across the picture.
enum Shape {
    Disc { cx: f32, cy: f32, r: f32 },
    Band { at: f32, half: f32 },
}

impl Shape {
    fn covers(&self, x: f32, y: f32) -> bool {
        match *self {
            Self::Disc { cx, cy, r } => (x - cx).powi(2) + (y - cy).powi(2) <= r * r,
            // A diagonal band: points whose x + y lies within `half` of `at`.
            Self::Band { at, half } => (x + y - at).abs() <= half,
        }
    }
}

/// The JPEG of an ad image of `width` x `height` pixels (sides of at most 65535).
pub fn ad_placeholder(prompt: &str, width: u32, height: u32) -> Result<Vec<u8>, Error> {
    let digest = Sha256::digest(prompt.as_bytes());
    let (from, to) = PALETTES[usize::from(digest[0]) % PALETTES.len()];
    let (from, to) = (rgb(from), rgb(to));
    let (w, h) = (width as f32, height as f32);
    let unit = |i: usize| f32::from(digest[i]) / 255.0;
    // Light or dark, each shape a tint of its own.
    let shapes: Vec<(Shape, [f32; 3], f32)> = (0..4)
        .map(|k| {
            let b = 2 + 4 * k;
            let shape = if k == 3 {
                Shape::Band { at: (0.4 + unit(b) * 1.2) * w.min(h), half: (0.04 + unit(b + 1) * 0.08) * w.min(h) }
            } else {
                Shape::Disc { cx: unit(b) * w, cy: unit(b + 1) * h, r: (0.1 + unit(b + 2) * 0.3) * w.min(h) }
            };
            let tint = if digest[b + 3] % 2 == 0 { [255.0; 3] } else { [15.0, 23.0, 42.0] };
            (shape, tint, 0.12 + unit(b + 3) * 0.18)
        })
        .collect();
    // The gradient's direction: along x, along y, or either diagonal.
    let direction = digest[1] % 4;
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 / w, y as f32 / h);
            let t = match direction {
                0 => fx,
                1 => fy,
                2 => (fx + fy) / 2.0,
                _ => (fx + 1.0 - fy) / 2.0,
            };
            let mut c: [f32; 3] = std::array::from_fn(|i| from[i] + (to[i] - from[i]) * t);
            for (shape, tint, alpha) in &shapes {
                if shape.covers(x as f32, y as f32) {
                    for (v, t) in c.iter_mut().zip(tint) {
                        *v += (t - *v) * alpha;
                    }
                }
            }
            pixels.extend(c.iter().map(|v| v.round().clamp(0.0, 255.0) as u8));
        }
    }
    let side = |n: u32| u16::try_from(n).map_err(|_| Error::internal(format!("picture side {n}")));
    let mut out = Vec::new();
    Encoder::new(&mut out, QUALITY)
        .encode(&pixels, side(width)?, side(height)?, ColorType::Rgb)
        .map_err(|e| Error::internal(format!("encoding a JPEG: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ad_placeholders_are_deterministic_jpegs_of_the_requested_size() {
        let a = ad_placeholder("winter coats", 320, 256).unwrap();
        assert!(a.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");
        assert!(a.ends_with(&[0xFF, 0xD9]), "a whole JPEG");
        assert_eq!(a, ad_placeholder("winter coats", 320, 256).unwrap());
        assert_ne!(a, ad_placeholder("summer shoes", 320, 256).unwrap());
        // The size a reader finds in its frame header.
        let sof = a.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame");
        let be = |i: usize| u16::from_be_bytes([a[sof + i], a[sof + i + 1]]);
        assert_eq!((be(7), be(5)), (320, 256));
    }
}
