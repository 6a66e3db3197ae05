//! Text to WinAnsiEncoding (Windows code page 1252), the only encoding the standard Type 1
//! fonts can show without embedding a font: one byte per glyph, Latin-1 plus a few
//! typographic characters. Anything else becomes `?` so the printed invoice never shows
//! garbage and widths stay measurable.

/// The code shown for characters the fonts cannot print.
pub(crate) const REPLACEMENT: u8 = b'?';
/// `…`, used to mark text cut to fit.
pub(crate) const ELLIPSIS: u8 = 0x85;
pub(crate) const SPACE: u8 = b' ';

/// CP1252 puts typographic characters where Latin-1 has C1 controls (0x80..=0x9F); 0x81,
/// 0x8D, 0x8F, 0x90 and 0x9D are unassigned and never produced.
const CP1252_SPECIALS: [(char, u8); 27] = [
    ('€', 0x80),
    ('‚', 0x82),
    ('ƒ', 0x83),
    ('„', 0x84),
    ('…', 0x85),
    ('†', 0x86),
    ('‡', 0x87),
    ('ˆ', 0x88),
    ('‰', 0x89),
    ('Š', 0x8A),
    ('‹', 0x8B),
    ('Œ', 0x8C),
    ('Ž', 0x8E),
    ('‘', 0x91),
    ('’', 0x92),
    ('“', 0x93),
    ('”', 0x94),
    ('•', 0x95),
    ('–', 0x96),
    ('—', 0x97),
    ('˜', 0x98),
    ('™', 0x99),
    ('š', 0x9A),
    ('›', 0x9B),
    ('œ', 0x9C),
    ('ž', 0x9E),
    ('Ÿ', 0x9F),
];

/// `text` as WinAnsi codes, one per printable character.
///
/// Names typed on some systems arrive decomposed ("a" + U+0301 for "á"): the common Spanish
/// and Portuguese accents are recomposed so they print, other combining marks are dropped
/// (the base letter still prints), and invisible format characters (zero-width joiners,
/// variation selectors of emoji) are dropped so an emoji prints as a single `?`.
pub(crate) fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if is_combining_mark(c) {
            if let Some(last) = out.last_mut()
                && let Some(composed) = compose(*last, c)
            {
                *last = composed;
            }
            continue;
        }
        if is_invisible(c) {
            continue;
        }
        out.push(encode_char(c));
    }
    out
}

fn encode_char(c: char) -> u8 {
    match c {
        ' '..='~' | '\u{A0}'..='\u{FF}' => u8::try_from(u32::from(c)).unwrap_or(REPLACEMENT),
        // Tabs, line breaks and exotic spaces: the layout does its own line breaking.
        c if c.is_whitespace() => SPACE,
        c => CP1252_SPECIALS
            .iter()
            .find(|(special, _)| *special == c)
            .map_or(REPLACEMENT, |(_, code)| *code),
    }
}

fn is_combining_mark(c: char) -> bool {
    ('\u{300}'..='\u{36F}').contains(&c)
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{FE00}'..='\u{FE0F}')
}

/// The precomposed character for `base` followed by combining `mark`, when WinAnsi has one.
fn compose(base: u8, mark: char) -> Option<u8> {
    let (bases, composed) = match mark {
        '\u{300}' => ("AEIOUaeiou", "ÀÈÌÒÙàèìòù"),
        '\u{301}' => ("AEIOUYaeiouy", "ÁÉÍÓÚÝáéíóúý"),
        '\u{302}' => ("AEIOUaeiou", "ÂÊÎÔÛâêîôû"),
        '\u{303}' => ("ANOano", "ÃÑÕãñõ"),
        '\u{308}' => ("AEIOUYaeiouy", "ÄËÏÖÜŸäëïöüÿ"),
        '\u{30A}' => ("Aa", "Åå"),
        '\u{327}' => ("Cc", "Çç"),
        _ => return None,
    };
    let index = bases.bytes().position(|b| b == base)?;
    composed.chars().nth(index).map(encode_char)
}

/// The character a WinAnsi code shows: the inverse of [`encode`], to read a rendered PDF
/// back in tests.
#[cfg(test)]
pub(crate) fn decode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match CP1252_SPECIALS.iter().find(|(_, code)| *code == b) {
            Some((c, _)) => *c,
            None => char::from(b),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spanish_text_maps_to_latin1_codes() {
        assert_eq!(
            encode("María Ñuñez ¿ü? ¡º"),
            b"Mar\xEDa \xD1u\xF1ez \xBF\xFC? \xA1\xBA".to_vec()
        );
        assert_eq!(
            decode(&encode("Fecha de emisión: Huamán ÁÉÍÓÚ")),
            "Fecha de emisión: Huamán ÁÉÍÓÚ"
        );
    }

    #[test]
    fn cp1252_specials_use_their_codes() {
        assert_eq!(
            encode("€ – — “a” ‘b’ • …"),
            b"\x80 \x96 \x97 \x93a\x94 \x91b\x92 \x95 \x85".to_vec()
        );
        assert_eq!(decode(&encode("€ – — “a” ‘b’ • … ™")), "€ – — “a” ‘b’ • … ™");
    }

    #[test]
    fn everything_else_is_replaced_or_dropped() {
        assert_eq!(encode("東京 😀 Ω"), b"?? ? ?".to_vec());
        // A family emoji is several code points glued by zero-width joiners: one `?` each,
        // joiners and variation selectors dropped.
        assert_eq!(encode("a👍\u{FE0F}b"), b"a?b".to_vec());
        assert_eq!(encode("a\tb\nc\r\nd\u{2003}e"), b"a b c  d e".to_vec());
        assert_eq!(encode("\u{0}\u{7F}\u{85}\u{9D}"), b"?? ?".to_vec());
        assert_eq!(encode(""), Vec::<u8>::new());
    }

    #[test]
    fn decomposed_accents_are_recomposed() {
        assert_eq!(
            decode(&encode("Huama\u{301}n Pen\u{303}a Mu\u{308}ller")),
            "Huamán Peña Müller"
        );
        // No precomposed form: the mark is dropped, never turned into `?`.
        assert_eq!(encode("x\u{301}\u{301}"), b"x".to_vec());
        assert_eq!(encode("\u{301}a"), b"a".to_vec());
    }
}
