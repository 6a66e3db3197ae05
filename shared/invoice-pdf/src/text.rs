//! Fitting WinAnsi text into a width: word wrapping, cutting with an ellipsis and shrinking
//! figures. All measured with the font metrics, so what is laid out is what is printed.

use crate::metrics::Font;
use crate::winansi::{ELLIPSIS, SPACE};

/// Smallest size a figure is shrunk to before it is cut instead.
const MIN_FIGURE_SIZE: f32 = 4.0;

/// Greedy word wrap of `text` to lines no wider than `max_width` at `size`.
///
/// Runs of spaces inside a line are kept (reference lists use double spaces as separators);
/// a line never starts or ends with one. A word wider than the whole width is broken between
/// characters, so every line fits whatever the input. Empty text gives no lines.
pub(crate) fn wrap(text: &[u8], font: Font, size: f32, max_width: f32) -> Vec<Vec<u8>> {
    let limit = max_units(max_width, size);
    let space = u64::from(font.advance(SPACE));
    let mut lines = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let mut line_units = 0u64;
    for word in text.split(|&b| b == SPACE) {
        if !line.is_empty() {
            let word_units = font.units(word);
            if line_units + space + word_units <= limit {
                line.push(SPACE);
                line.extend_from_slice(word);
                line_units += space + word_units;
                continue;
            }
            lines.push(trim_end(std::mem::take(&mut line)));
            line_units = 0;
        }
        // At the start of a line: spaces that fell on the break are dropped.
        for &code in word {
            let advance = u64::from(font.advance(code));
            if !line.is_empty() && line_units + advance > limit {
                lines.push(std::mem::take(&mut line));
                line_units = 0;
            }
            line.push(code);
            line_units += advance;
        }
    }
    if !line.is_empty() {
        lines.push(trim_end(line));
    }
    lines
}

/// [`wrap`], keeping at most `max_lines` (at least one): if text is left over, the last kept
/// line ends with an ellipsis.
pub(crate) fn wrap_at_most(text: &[u8], font: Font, size: f32, max_width: f32, max_lines: usize) -> Vec<Vec<u8>> {
    let max_lines = max_lines.max(1);
    let mut lines = wrap(text, font, size, max_width);
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = with_ellipsis(last, font, size, max_width);
        }
    }
    lines
}

/// `text` on one line: as is if it fits, otherwise cut and ended with an ellipsis.
pub(crate) fn one_line(text: &[u8], font: Font, size: f32, max_width: f32) -> Vec<u8> {
    if font.width(text, size) <= max_width {
        text.to_vec()
    } else {
        with_ellipsis(text, font, size, max_width)
    }
}

/// A figure on one line, shrunk rather than cut so the amount stays whole: the size it is
/// shown at and its codes. Only a figure too wide even at the minimum size is cut.
pub(crate) fn figure(text: &[u8], font: Font, size: f32, max_width: f32) -> (f32, Vec<u8>) {
    let units = font.units(text);
    if units == 0 || font.width(text, size) <= max_width {
        return (size, text.to_vec());
    }
    // Slightly under the exact ratio so float rounding cannot leave it a hair too wide.
    let shrunk = (max_width * 1000.0 / units as f32 * 0.999).min(size);
    if shrunk >= MIN_FIGURE_SIZE {
        (shrunk, text.to_vec())
    } else {
        (MIN_FIGURE_SIZE, with_ellipsis(text, font, MIN_FIGURE_SIZE, max_width))
    }
}

/// The longest prefix of `text` that fits in `max_width` with an ellipsis after it.
fn with_ellipsis(text: &[u8], font: Font, size: f32, max_width: f32) -> Vec<u8> {
    let limit = max_units(max_width, size);
    let mut budget = limit.saturating_sub(u64::from(font.advance(ELLIPSIS)));
    let mut cut = Vec::new();
    for &code in text {
        let advance = u64::from(font.advance(code));
        if advance > budget {
            break;
        }
        budget -= advance;
        cut.push(code);
    }
    let mut cut = trim_end(cut);
    cut.push(ELLIPSIS);
    cut
}

/// `max_width` in font units at `size`, rounded down so measured text never overflows.
fn max_units(max_width: f32, size: f32) -> u64 {
    if size <= 0.0 || max_width <= 0.0 || !max_width.is_finite() {
        return 0;
    }
    // Saturating float-to-int conversion: huge widths just mean "no limit".
    (max_width * 1000.0 / size).floor() as u64
}

fn trim_end(mut line: Vec<u8>) -> Vec<u8> {
    while line.last() == Some(&SPACE) {
        line.pop();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(lines: &[Vec<u8>]) -> Vec<String> {
        lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect()
    }

    #[test]
    fn wraps_on_spaces_within_the_width() {
        // "aaaa" is 4 × 556 = 2224 units: 22.24 pt at 10 pt.
        let lines = wrap(b"aaaa aaaa aaaa", Font::Regular, 10.0, 50.0);
        assert_eq!(strings(&lines), ["aaaa aaaa", "aaaa"]);
        for line in &lines {
            assert!(Font::Regular.width(line, 10.0) <= 50.0);
        }
    }

    #[test]
    fn keeps_inner_spaces_and_drops_them_at_breaks() {
        assert_eq!(strings(&wrap(b"  a  b  ", Font::Regular, 10.0, 500.0)), ["a  b"]);
        assert_eq!(
            strings(&wrap(b"aaaa     aaaa", Font::Regular, 10.0, 30.0)),
            ["aaaa", "aaaa"]
        );
        assert!(wrap(b"", Font::Regular, 10.0, 30.0).is_empty());
        assert!(wrap(b"    ", Font::Regular, 10.0, 30.0).is_empty());
    }

    #[test]
    fn breaks_words_longer_than_the_width() {
        let word = vec![b'm'; 100];
        let lines = wrap(&word, Font::Bold, 8.0, 40.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), word);
        for line in &lines {
            assert!(Font::Bold.width(line, 8.0) <= 40.0);
        }
        // Even a width too narrow for one glyph makes progress, one glyph a line.
        assert_eq!(wrap(b"mm", Font::Regular, 10.0, 1.0).len(), 2);
    }

    #[test]
    fn cuts_with_an_ellipsis() {
        let lines = wrap_at_most(b"aaaa aaaa aaaa aaaa", Font::Regular, 10.0, 50.0, 1);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].last(), Some(&ELLIPSIS));
        assert!(Font::Regular.width(&lines[0], 10.0) <= 50.0);
        assert_eq!(one_line(b"short", Font::Regular, 10.0, 100.0), b"short".to_vec());
        let cut = one_line(&[b'x'; 200], Font::Regular, 10.0, 100.0);
        assert_eq!(cut.last(), Some(&ELLIPSIS));
        assert!(Font::Regular.width(&cut, 10.0) <= 100.0);
    }

    #[test]
    fn figures_shrink_before_they_are_cut() {
        assert_eq!(figure(b"204.88", Font::Regular, 8.0, 60.0), (8.0, b"204.88".to_vec()));
        let (size, codes) = figure(b"92233720368547758.07", Font::Regular, 8.0, 60.0);
        assert!((MIN_FIGURE_SIZE..8.0).contains(&size));
        assert_eq!(codes, b"92233720368547758.07".to_vec());
        assert!(Font::Regular.width(&codes, size) <= 60.0);
        let (size, codes) = figure(&[b'9'; 100], Font::Regular, 8.0, 60.0);
        assert_eq!(size, MIN_FIGURE_SIZE);
        assert!(Font::Regular.width(&codes, size) <= 60.0);
    }
}
