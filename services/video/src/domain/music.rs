//! Background music: a small library of tracks synthesised by ffmpeg's `aevalsrc` audio source
//! from the formulas below (chords and arpeggios of sine tones), so nothing is licensed, shipped
//! or downloaded. A track loops for as long as the video lasts.

use nexus_kernel::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Music {
    #[default]
    None,
    /// A soft A-minor pad that swells slowly.
    Calm,
    /// A plucked C-major arpeggio at 120 bpm.
    Upbeat,
    /// A D-major chord with a quick shimmer.
    Bright,
}

impl Music {
    pub const ALL: [Music; 3] = [Music::Calm, Music::Upbeat, Music::Bright];

    /// `""` or `none`: no music.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s.trim() {
            "" | "none" => Self::None,
            "calm" => Self::Calm,
            "upbeat" => Self::Upbeat,
            "bright" => Self::Bright,
            other => {
                return Err(Error::invalid("video.unknown_music")
                    .with_param("music", other.chars().take(40).collect::<String>())
                    .with_violation("music", "unknown"));
            }
        })
    }

    /// As stored and answered (`""` for none).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Calm => "calm",
            Self::Upbeat => "upbeat",
            Self::Bright => "bright",
        }
    }

    /// The track's samples as an `aevalsrc` expression of `t` (seconds), within -1..1.
    pub fn expression(self) -> Option<&'static str> {
        Some(match self {
            Self::None => return None,
            Self::Calm => {
                "(0.3*sin(2*PI*220*t)+0.22*sin(2*PI*261.63*t)+0.22*sin(2*PI*329.63*t))*(0.75+0.25*sin(2*PI*0.2*t))"
            }
            Self::Upbeat => {
                "0.5*sin(2*PI*if(lt(mod(t,1),0.25),261.63,if(lt(mod(t,1),0.5),329.63,if(lt(mod(t,1),0.75),392,523.25)))*t)*exp(-5*mod(t,0.25))"
            }
            Self::Bright => {
                "(0.25*sin(2*PI*293.66*t)+0.2*sin(2*PI*369.99*t)+0.2*sin(2*PI*440*t))*(0.8+0.2*sin(2*PI*3*t))"
            }
        })
    }

    /// The ffmpeg `lavfi` input of the track, `seconds` long.
    pub fn source(self, seconds: f64) -> Option<String> {
        self.expression().map(|e| format!("aevalsrc='{e}':s=44100:c=stereo:d={seconds:.3}"))
    }
}

/// The filter graph that lays the music (`[music]`) under the speech (`[speech]`) into
/// `[mixed]`: the music quiet throughout and pressed down further while someone speaks
/// (side-chain compression keyed by the speech), the speech untouched.
pub const DUCKING: &str = "[speech]asplit=2[voice][key];[music]volume=0.25[bed];\
     [bed][key]sidechaincompress=threshold=0.015:ratio=8:attack=15:release=350[ducked];\
     [voice][ducked]amix=inputs=2:duration=first:normalize=0[mixed]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_parse_and_print_back() {
        for m in Music::ALL {
            assert_eq!(Music::parse(m.as_str()).unwrap(), m);
            assert!(m.source(2.0).unwrap().contains(":d=2.000"));
        }
        assert_eq!(Music::parse("none").unwrap(), Music::None);
        assert_eq!(Music::None.source(1.0), None);
        assert_eq!(Music::parse("jazz").unwrap_err().code(), "video.unknown_music");
    }
}
