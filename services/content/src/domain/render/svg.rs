//! Local image placeholders: an SVG with a gradient chosen from a hash of the prompt and the
//! caption drawn on it, so pages look finished offline. Deterministic: same input, same bytes.

use nexus_kernel::Locale;
use sha2::{Digest, Sha256};

use super::escape;
use crate::domain::text::fit;

/// Pairs of colours that keep white text readable.
pub(super) const PALETTES: [(&str, &str); 8] = [
    ("#4338ca", "#db2777"),
    ("#0f766e", "#2563eb"),
    ("#7c3aed", "#c026d3"),
    ("#b45309", "#be123c"),
    ("#1d4ed8", "#0891b2"),
    ("#15803d", "#0f766e"),
    ("#9d174d", "#6d28d9"),
    ("#334155", "#0369a1"),
];

pub fn placeholder(prompt: &str, caption: &str, language: Locale, width: u32, height: u32) -> String {
    let digest = Sha256::digest(format!("{prompt}\u{0}{caption}").as_bytes());
    let (from, to) = PALETTES[usize::from(digest[0]) % PALETTES.len()];
    let angle = u32::from(digest[1]) % 4;
    let (x2, y2) = [("100%", "100%"), ("100%", "0%"), ("0%", "100%"), ("100%", "50%")][angle as usize];
    let rtl = language.direction() == nexus_kernel::TextDirection::Rtl;
    let text = escape(&fit(caption, 48));
    let size = (height / 9).clamp(16, 96);
    // `direction` + `text-anchor: middle` keep centred right-to-left captions in reading order.
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{text}\">\
<defs><linearGradient id=\"g\" x1=\"0%\" y1=\"0%\" x2=\"{x2}\" y2=\"{y2}\"><stop offset=\"0%\" stop-color=\"{from}\"/><stop offset=\"100%\" stop-color=\"{to}\"/></linearGradient></defs>\
<rect width=\"100%\" height=\"100%\" fill=\"url(#g)\"/>\
<circle cx=\"{cx}\" cy=\"{cy}\" r=\"{r}\" fill=\"#ffffff\" fill-opacity=\"0.12\"/>\
<text x=\"50%\" y=\"50%\" fill=\"#ffffff\" font-family=\"system-ui, sans-serif\" font-size=\"{size}\" font-weight=\"700\" text-anchor=\"middle\" dominant-baseline=\"middle\" direction=\"{dir}\" xml:lang=\"{lang}\">{text}</text></svg>",
        cx = width * u32::from(digest[2] % 80 + 10) / 100,
        cy = height * u32::from(digest[3] % 80 + 10) / 100,
        r = height / 3,
        dir = if rtl { "rtl" } else { "ltr" },
        lang = language.code(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_deterministic_escaped_and_directed() {
        let a = placeholder("shoes", "<b>Run</b> & \"fly\"", Locale::En, 1024, 576);
        assert_eq!(a, placeholder("shoes", "<b>Run</b> & \"fly\"", Locale::En, 1024, 576));
        assert!(a.contains("&lt;b&gt;Run&lt;/b&gt; &amp; &quot;fly&quot;"));
        assert!(!a.contains("<b>"));
        let ar = placeholder("shoes", "أحذية الجري", Locale::Ar, 1024, 1024);
        assert!(ar.contains("direction=\"rtl\"") && ar.contains("xml:lang=\"ar\""));
        assert_ne!(a, placeholder("bags", "<b>Run</b> & \"fly\"", Locale::En, 1024, 576));
    }
}
