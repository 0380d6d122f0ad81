//! Burned-in captions for the local renderer: the script cut into short cues timed across the
//! speech by their share of its characters, as an ASS subtitle file (libass draws it, shaping
//! Hebrew and Arabic with HarfBuzz and ordering them with FriBiDi). Right-to-left scripts get a
//! font with their glyphs and each cue wrapped in RIGHT-TO-LEFT EMBEDDING … POP DIRECTIONAL
//! FORMATTING, so a cue reads right to left even when it starts with digits or Latin words.

use nexus_kernel::{Locale, TextDirection};

/// Words per cue (a line that fits a portrait video).
const WORDS_PER_CUE: usize = 6;
pub const RLE: char = '\u{202B}';
pub const PDF: char = '\u{202C}';

/// One caption: its text (logical order) and when it shows, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// The script in cues over `duration` seconds.
pub fn cues(script: &str, duration: f64) -> Vec<Cue> {
    let words: Vec<&str> = script.split_whitespace().collect();
    let chunks: Vec<String> = words.chunks(WORDS_PER_CUE).map(|c| c.join(" ")).collect();
    let total: usize = chunks.iter().map(|c| c.chars().count()).sum::<usize>().max(1);
    let mut at = 0.0;
    chunks
        .into_iter()
        .map(|text| {
            let share = text.chars().count() as f64 / total as f64;
            let cue = Cue { start: at, end: (at + share * duration).min(duration), text };
            at = cue.end;
            cue
        })
        .collect()
}

/// The font that has the script's glyphs (Debian's fonts-noto-core).
pub fn font(language: Locale) -> &'static str {
    match language {
        Locale::Ar => "Noto Sans Arabic",
        Locale::He => "Noto Sans Hebrew",
        _ => "Noto Sans",
    }
}

fn clock(secs: f64) -> String {
    let cs = (secs.max(0.0) * 100.0).round() as u64;
    format!("{}:{:02}:{:02}.{:02}", cs / 360_000, (cs / 6000) % 60, (cs / 100) % 60, cs % 100)
}

/// Text as ASS takes it: no override blocks or line-break escapes from the script.
fn escape(s: &str) -> String {
    s.replace('\\', "\u{29F5}").replace('{', "(").replace('}', ")")
}

/// An ASS file for a `width`×`height` video.
pub fn ass(script: &str, language: Locale, duration: f64, width: u32, height: u32) -> String {
    let rtl = language.direction() == TextDirection::Rtl;
    let size = (height.min(width) / 18).max(16);
    let margin = height / 12;
    let mut out = format!(
        "[Script Info]\nScriptType: v4.00+\nPlayResX: {width}\nPlayResY: {height}\nWrapStyle: 0\nScaledBorderAndShadow: yes\n\n\
         [V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
         Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n\
         Style: Default,{},{size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,1,0,0,0,100,100,0,0,1,3,1,2,40,40,{margin},1\n\n\
         [Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n",
        font(language)
    );
    for cue in cues(script, duration) {
        let text = escape(&cue.text);
        let text = if rtl { format!("{RLE}{text}{PDF}") } else { text };
        out.push_str(&format!("Dialogue: 0,{},{},Default,,0,0,0,,{text}\n", clock(cue.start), clock(cue.end)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_cover_the_speech_in_script_order() {
        let c = cues("one two three four five six seven eight", 8.0);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].text, "one two three four five six");
        assert_eq!(c[0].start, 0.0);
        assert!((c[1].end - 8.0).abs() < 1e-9);
        assert!(c[0].end <= c[1].start + 1e-9);
    }

    #[test]
    fn arabic_captions_run_right_to_left_in_an_arabic_font() {
        let file = ass("مرحبا بكم في متجرنا 2026 اليوم", Locale::Ar, 3.0, 720, 1280);
        assert!(file.contains("Style: Default,Noto Sans Arabic,"));
        let line = file.lines().find(|l| l.starts_with("Dialogue:")).unwrap();
        let text = line.rsplit(",,").next().unwrap();
        assert!(text.starts_with(RLE) && text.ends_with(PDF), "{text:?}");
        // Logical order kept (the renderer orders it for display).
        assert!(text.contains("مرحبا بكم في متجرنا 2026 اليوم"));
        let he = ass("שלום עולם", Locale::He, 1.0, 1280, 720);
        assert!(he.contains("Noto Sans Hebrew") && he.contains(RLE));
        let en = ass("Hello {\\b1}world", Locale::En, 1.0, 1280, 720);
        assert!(!en.contains(RLE) && !en.contains("{\\b1}"));
    }
}
