//! Plots as SVG or PNG files (plotters): the shared figure machinery (font,
//! palette, tick labels, `save`) and the heatmap ([`heatmap`]) that
//! `varprop phase` fills. The figures of runs are built in analysis
//! (`analysis::layer_plot`, `analysis::phase`).
//!
//! Text is drawn with an embedded subset of DejaVu Sans
//! (`assets/fonts/`, through plotters' pure-Rust `ab_glyph` feature), so a
//! PNG renders the same on a headless machine without system fonts. Files
//! are written atomically, like every other output.

pub mod heatmap;

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::io::output::write_atomic;

pub use heatmap::HeatmapFigure;

/// The font every plot uses, registered as "sans-serif".
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-subset.ttf");
pub(crate) const FONT_FAMILY: &str = "sans-serif";

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_err() {
            panic!("the embedded font assets/fonts/DejaVuSans-subset.ttf does not parse");
        }
    });
}

/// The image formats, from the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
}

impl ImageFormat {
    /// `.svg` or `.png` (any case); `flag` names the option in the error.
    pub fn from_path(path: &Path, flag: &str) -> Result<ImageFormat> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(ImageFormat::Svg),
            Some("png") => Ok(ImageFormat::Png),
            _ => Err(Error::invalid(
                flag,
                format!(
                    "'{}': the file name must end in .svg or .png",
                    path.display()
                ),
            )),
        }
    }
}

/// What a figure is: its size in pixels and how to draw it on any backend.
pub trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// Draws `figure` into `path` (SVG or PNG by the extension), atomically.
/// `flag` names the option that gave the path, for errors.
pub fn save(figure: &impl Figure, path: &Path, flag: &str) -> Result<()> {
    let format = ImageFormat::from_path(path, flag)?;
    register_font();
    let (w, h) = figure.size();
    let failed = |e: String| Error::Output(format!("plot {}: {e}", path.display()));
    let bytes = match format {
        ImageFormat::Svg => {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
                figure.draw(&root).map_err(|e| failed(e.to_string()))?;
                root.present().map_err(|e| failed(e.to_string()))?;
            }
            text.into_bytes()
        }
        ImageFormat::Png => {
            let mut rgb = vec![0u8; 3 * w as usize * h as usize];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
                figure.draw(&root).map_err(|e| failed(e.to_string()))?;
                root.present().map_err(|e| failed(e.to_string()))?;
            }
            encode_png(&rgb, w, h).map_err(|e| failed(e.to_string()))?
        }
    };
    write_atomic(path, &bytes)
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(rgb)?;
    }
    Ok(out)
}

/// Ten colours that stay apart (Tableau 10), one per curve.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A short number for axis labels: up to 3 significant digits.
pub(crate) fn short_number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e4).contains(&a) {
        return format!("{v:.1e}");
    }
    let digits = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The label of a tick at log10(value) = y on a log-scale axis: powers of
/// ten as 1e-12, 0.1, 1, 10, 1e5; other ticks as the value.
pub(crate) fn log_tick_label(y: f64) -> String {
    let k = y.round();
    if (y - k).abs() < 1e-9 {
        match k as i64 {
            -2 => "0.01".into(),
            -1 => "0.1".into(),
            0 => "1".into(),
            1 => "10".into(),
            2 => "100".into(),
            k => format!("1e{k}"),
        }
    } else if (-2.0..=2.0).contains(&y) {
        // between 0.01 and 100, decimals as the whole powers there are
        let v = 10f64.powf(y);
        let decimals = (2 - v.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        // beyond, the form of the whole powers beside it (1e-3, 3.2e-4)
        let v = 10f64.powf(y);
        let exponent = v.log10().floor() as i32;
        let mantissa = v / 10f64.powi(exponent);
        format!("{mantissa:.1}e{exponent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_read_as_values() {
        assert_eq!(log_tick_label(0.0), "1");
        assert_eq!(log_tick_label(-12.0), "1e-12");
        assert_eq!(log_tick_label(5.0), "1e5");
        assert_eq!(log_tick_label(-1.0), "0.1");
        assert_eq!(log_tick_label(0.5), "3.16");
        // one form on each side of 0.01 and 100: no 0.00316 beside 1e-3
        assert_eq!(log_tick_label(-2.5), "3.2e-3");
        assert_eq!(log_tick_label(-3.5), "3.2e-4");
        assert_eq!(log_tick_label(-1.5), "0.0316");
        assert_eq!(log_tick_label(3.5), "3.2e3");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(1.5), "1.5");
        assert_eq!(short_number(120.0), "120");
    }

    #[test]
    fn the_extension_picks_the_format() {
        let f = |p: &str| ImageFormat::from_path(Path::new(p), "--plot");
        assert_eq!(f("a.svg").unwrap(), ImageFormat::Svg);
        assert_eq!(f("dir/b.PNG").unwrap(), ImageFormat::Png);
        let err = f("c.pdf").unwrap_err().to_string();
        assert!(
            err.starts_with("--plot:") && err.contains(".svg or .png"),
            "{err}"
        );
    }
}
