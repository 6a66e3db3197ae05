//! Pages being drawn and their assembly into a PDF file with pdf-writer.
//!
//! Nothing here reads the clock or draws random numbers: object numbers are assigned in page
//! order and the document information holds no dates, so the same drawing gives the same
//! bytes.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::RenderError;
use crate::metrics::Font;

/// A4 in points.
pub(crate) const PAGE_WIDTH: f32 = 595.28;
pub(crate) const PAGE_HEIGHT: f32 = 841.89;

/// Beyond this the invoice is not something a person will read on paper, and the work (and
/// memory) of rendering it is bounded.
pub(crate) const MAX_PAGES: usize = 2_000;

/// One page's content stream.
pub(crate) struct Page {
    content: Content,
}

impl Page {
    fn new() -> Page {
        Page {
            content: Content::new(),
        }
    }

    /// `text` (WinAnsi codes) with its baseline starting at (`x`, `baseline`).
    pub(crate) fn text(&mut self, font: Font, size: f32, x: f32, baseline: f32, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        self.content.begin_text();
        self.content.set_font(Name(font.resource_name()), size);
        self.content.next_line(x, baseline);
        self.content.show(Str(text));
        self.content.end_text();
    }

    /// `text` ending at `right`.
    pub(crate) fn text_right(&mut self, font: Font, size: f32, right: f32, baseline: f32, text: &[u8]) {
        self.text(font, size, right - font.width(text, size), baseline, text);
    }

    /// `text` centred on `center`.
    pub(crate) fn text_centered(&mut self, font: Font, size: f32, center: f32, baseline: f32, text: &[u8]) {
        self.text(font, size, center - font.width(text, size) / 2.0, baseline, text);
    }

    /// A horizontal rule from `x1` to `x2`; `gray` 0 is black.
    pub(crate) fn rule(&mut self, x1: f32, x2: f32, y: f32, width: f32, gray: f32) {
        self.content.save_state();
        self.content.set_line_width(width);
        self.content.set_stroke_gray(gray);
        self.content.move_to(x1, y);
        self.content.line_to(x2, y);
        self.content.stroke();
        self.content.restore_state();
    }

    /// The outline of a box whose top-left corner is (`x`, `top`).
    pub(crate) fn frame(&mut self, x: f32, top: f32, width: f32, height: f32, line_width: f32) {
        self.content.save_state();
        self.content.set_line_width(line_width);
        self.content.rect(x, top - height, width, height);
        self.content.stroke();
        self.content.restore_state();
    }

    /// A filled box whose top-left corner is (`x`, `top`).
    pub(crate) fn shade(&mut self, x: f32, top: f32, width: f32, height: f32, gray: f32) {
        self.content.save_state();
        self.content.set_fill_gray(gray);
        self.content.rect(x, top - height, width, height);
        self.content.fill_nonzero();
        self.content.restore_state();
    }

    /// Black boxes (`x`, `top`, `width`, `height`) filled as one path, so touching boxes
    /// leave no anti-aliased seam between them (a QR code's modules).
    pub(crate) fn fill_boxes(&mut self, boxes: impl IntoIterator<Item = (f32, f32, f32, f32)>) {
        self.content.save_state();
        self.content.set_fill_gray(0.0);
        for (x, top, width, height) in boxes {
            self.content.rect(x, top - height, width, height);
        }
        self.content.fill_nonzero();
        self.content.restore_state();
    }
}

/// The pages drawn so far; the last one is being drawn.
pub(crate) struct Canvas {
    done: Vec<Page>,
    current: Page,
}

impl Canvas {
    pub(crate) fn new() -> Canvas {
        Canvas {
            done: Vec::new(),
            current: Page::new(),
        }
    }

    pub(crate) fn page(&mut self) -> &mut Page {
        &mut self.current
    }

    /// Starts a new page, refusing to go past [`MAX_PAGES`].
    pub(crate) fn new_page(&mut self) -> Result<(), RenderError> {
        if self.done.len() + 1 >= MAX_PAGES {
            return Err(RenderError::TooManyPages { max: MAX_PAGES });
        }
        self.done.push(std::mem::replace(&mut self.current, Page::new()));
        Ok(())
    }

    /// Lets `decorate` draw on every page, knowing its number and the page count (for
    /// footers), then writes the PDF file.
    pub(crate) fn finish(
        self,
        info: &DocumentInfo,
        mut decorate: impl FnMut(&mut Page, usize, usize),
    ) -> Result<Vec<u8>, RenderError> {
        let mut pages = self.done;
        pages.push(self.current);
        let count = pages.len();
        for (index, page) in pages.iter_mut().enumerate() {
            decorate(page, index + 1, count);
        }

        // Fixed object numbers: catalog, page tree, fonts, information, then a page and its
        // content stream for each page.
        let catalog_id = Ref::new(1);
        let tree_id = Ref::new(2);
        let font_ids = [Ref::new(3), Ref::new(4)];
        let info_id = Ref::new(5);
        let first_page_object = 6;
        let count_i32 = i32::try_from(count).map_err(|_| RenderError::TooManyPages { max: MAX_PAGES })?;
        let object = |index: usize, offset: i32| -> Result<Ref, RenderError> {
            i32::try_from(index)
                .ok()
                .and_then(|i| i.checked_mul(2))
                .and_then(|i| i.checked_add(first_page_object + offset))
                .map(Ref::new)
                .ok_or(RenderError::TooManyPages { max: MAX_PAGES })
        };
        let page_ids = (0..count).map(|i| object(i, 0)).collect::<Result<Vec<_>, _>>()?;

        let mut pdf = Pdf::new();
        pdf.catalog(catalog_id).pages(tree_id).lang(TextStr("es-PE"));
        pdf.pages(tree_id).kids(page_ids.iter().copied()).count(count_i32);
        for (index, (page, page_id)) in pages.into_iter().zip(page_ids.iter().copied()).enumerate() {
            let content_id = object(index, 1)?;
            let mut writer = pdf.page(page_id);
            writer
                .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
                .parent(tree_id)
                .contents(content_id);
            let mut resources = writer.resources();
            let mut fonts = resources.fonts();
            for (font, id) in Font::ALL.iter().zip(font_ids) {
                fonts.pair(Name(font.resource_name()), id);
            }
            fonts.finish();
            resources.finish();
            writer.finish();
            pdf.stream(content_id, &page.content.finish());
        }
        for (font, id) in Font::ALL.iter().zip(font_ids) {
            // The standard 14 fonts need no widths or descriptor; WinAnsiEncoding makes the
            // codes from `winansi::encode` show the intended glyphs.
            pdf.type1_font(id)
                .base_font(Name(font.base_font()))
                .encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        pdf.document_info(info_id)
            .title(TextStr(&info.title))
            .author(TextStr(&info.author))
            .creator(TextStr("invoice-pdf"));
        Ok(pdf.finish())
    }
}

/// The document information dictionary: no dates, so renders stay byte-identical.
pub(crate) struct DocumentInfo {
    pub(crate) title: String,
    pub(crate) author: String,
}
