//! Fitting text into a character limit without cutting a word or a grapheme in half.
//!
//! Limits are counted in Unicode scalar values (what Instagram, LinkedIn and YouTube count; X
//! weighs most Latin, Hebrew and Arabic letters as one too). A text over the limit is cut at the
//! last word boundary that leaves room for an ellipsis.

use unicode_segmentation::UnicodeSegmentation;

pub const ELLIPSIS: char = '…';

pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `text` if it fits in `limit` characters (0 = no limit); otherwise the longest prefix ending on
/// a word boundary, with trailing spaces and punctuation dropped, followed by an ellipsis.
pub fn fit(text: &str, limit: usize) -> String {
    let text = text.trim();
    if limit == 0 || char_len(text) <= limit {
        return text.to_owned();
    }
    let budget = limit.saturating_sub(1);
    let mut end = 0;
    let mut used = 0;
    for (i, word) in text.split_word_bound_indices() {
        let n = char_len(word);
        if used + n > budget {
            break;
        }
        used += n;
        end = i + word.len();
    }
    if end == 0 {
        // One word longer than the limit: cut between graphemes instead.
        used = 0;
        for (i, g) in text.grapheme_indices(true) {
            let n = char_len(g);
            if used + n > budget {
                break;
            }
            used += n;
            end = i + g.len();
        }
    }
    let cut =
        text[..end].trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-' | '،' | '—'));
    format!("{cut}{ELLIPSIS}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept() {
        assert_eq!(fit("  Hello world ", 20), "Hello world");
        assert_eq!(fit("Hello", 0), "Hello");
    }

    #[test]
    fn long_text_is_cut_on_a_word_boundary() {
        let t = "The quick brown fox jumps over the lazy dog";
        let f = fit(t, 20);
        assert!(char_len(&f) <= 20, "{f}");
        assert_eq!(f, "The quick brown fox…");
    }

    #[test]
    fn graphemes_are_never_split() {
        // A combining accent and an emoji with a modifier stay whole.
        let t = "e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}";
        let f = fit(t, 5);
        assert!(char_len(&f) <= 5);
        assert!(!f.trim_end_matches(ELLIPSIS).ends_with('e'), "{f:?}");
        let ar = "مرحبا بكم في متجرنا الجديد حيث تجدون كل ما تحتاجونه";
        let f = fit(ar, 25);
        assert!(char_len(&f) <= 25);
        assert!(ar.starts_with(f.trim_end_matches(ELLIPSIS)));
    }
}
