//! log q against depth for one or more runs: per run (scheme) one colour,
//! the measured mean over networks as a solid line in a band of +-2
//! standard errors, the mean-field theory as a dashed line of the same
//! colour, on a log-scale axis; a second panel for the backward signal g
//! when the runs had the backward pass.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::curves::{LogCurve, Measure, log_curve};
use crate::io::plot::{FONT_FAMILY, Figure, PALETTE, log_tick_label, short_number};
use crate::sim::RunOutput;
use crate::spec::RunSpec;

/// Which q the first panel shows (`--plot-quantity`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Quantity {
    /// q_pre = E[h^2]
    Pre,
    /// q_post = E[phi(h)^2]
    #[default]
    Post,
}

impl Quantity {
    pub fn measure(self) -> Measure {
        match self {
            Quantity::Pre => Measure::QPre,
            Quantity::Post => Measure::QPost,
        }
    }
}

/// How many standard errors the band spans on each side.
pub const BAND_SE: f64 = 2.0;

/// One labelled curve.
#[derive(Clone, Debug)]
pub struct Curve {
    pub label: String,
    pub curve: LogCurve,
}

/// One chart: a y-axis label and its curves.
#[derive(Clone, Debug)]
pub struct Panel {
    pub y_label: String,
    pub curves: Vec<Curve>,
    /// draw each curve through the rows that have a value, over those that
    /// have none (a quantity only some rows have, such as attention's)
    pub bridge_gaps: bool,
}

/// The figure: a title over one or two panels.
#[derive(Clone, Debug)]
pub struct LayerFigure {
    pub title: String,
    pub panels: Vec<Panel>,
}

/// A run to plot, with its label (the scheme's name).
pub struct LabelledRun<'a> {
    pub label: String,
    pub spec: &'a RunSpec,
    pub run: &'a RunOutput,
}

impl LayerFigure {
    /// The q panel, and the g panel when every run had the backward pass.
    pub fn new(title: String, runs: &[LabelledRun], quantity: Quantity) -> LayerFigure {
        let measure = quantity.measure();
        let mut q_curves = Vec::new();
        let mut g_curves = Vec::new();
        for r in runs {
            let rows = super::curves::TheoryCurves::of(r.spec);
            q_curves.push(Curve {
                label: r.label.clone(),
                curve: log_curve(r.spec, r.run, &rows, measure),
            });
            if r.spec.probes.backward {
                g_curves.push(Curve {
                    label: r.label.clone(),
                    curve: log_curve(r.spec, r.run, &rows, Measure::Gradient),
                });
            }
        }
        let mut panels = vec![Panel {
            y_label: format!(
                "{} (log scale): mean over networks ± {BAND_SE} SE",
                measure.name()
            ),
            curves: q_curves,
            bridge_gaps: false,
        }];
        if !runs.is_empty() && g_curves.len() == runs.len() {
            panels.push(Panel {
                y_label: format!("g = E[δ²], backward (log scale): mean ± {BAND_SE} SE"),
                curves: g_curves,
                bridge_gaps: false,
            });
        }
        LayerFigure { title, panels }
    }
}

const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 500;
const TITLE_HEIGHT: u32 = 40;

impl Figure for LayerFigure {
    fn size(&self) -> (u32, u32) {
        (
            WIDTH,
            TITLE_HEIGHT + PANEL_HEIGHT * self.panels.len().max(1) as u32,
        )
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let body = root.titled(&self.title, (FONT_FAMILY, 20))?;
        let areas = body.split_evenly((self.panels.len().max(1), 1));
        for (panel, area) in self.panels.iter().zip(&areas) {
            draw_panel(panel, area)?;
        }
        Ok(())
    }
}

const LN_10: f64 = std::f64::consts::LN_10;

/// A measured point in log10: (layer, mean, band low, band high).
type BandPoint = (f64, f64, Option<f64>, Option<f64>);

/// One curve in log10, ready to draw: the measured points and the theory.
struct CurveData {
    band: Vec<Option<BandPoint>>,
    theory: Vec<Option<f64>>,
}

fn band_points(curve: &LogCurve) -> Vec<Option<BandPoint>> {
    curve
        .measured
        .iter()
        .enumerate()
        .map(|(l, m)| {
            m.map(|m| {
                (
                    l as f64,
                    m.ln_mean / LN_10,
                    m.ln_shifted(-BAND_SE).map(|v| v / LN_10),
                    m.ln_shifted(BAND_SE).map(|v| v / LN_10),
                )
            })
        })
        .collect()
}

/// Runs of consecutive present values.
fn segments<T: Copy>(values: &[Option<T>]) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut current = Vec::new();
    for v in values {
        match v {
            Some(v) => current.push(*v),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The y range (log10) that shows every mean, band edge and theory value.
fn y_range(curves: &[CurveData]) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut take = |v: f64| {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    };
    for curve in curves {
        for (_, mean, low, high) in curve.band.iter().flatten() {
            take(*mean);
            // a band edge far below the mean (SE near the mean) would
            // squash the curves: it is clipped at the axis instead
            if let Some(low) = low
                && *mean - *low < 3.0
            {
                take(*low);
            }
            if let Some(high) = high {
                take(*high);
            }
        }
        for t in curve.theory.iter().flatten() {
            take(*t);
        }
    }
    if !lo.is_finite() {
        return (-1.0, 1.0);
    }
    let pad = (0.06 * (hi - lo)).max(0.1);
    (lo - pad, hi + pad)
}

/// The corner of the chart with the fewest points near it, for the legend.
fn emptiest_corner(
    points: &[(f64, f64)],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> SeriesLabelPosition {
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let near = |(x, y): (f64, f64), right: bool, upper: bool| {
        let fx = (x - x0) / (x1 - x0);
        let fy = (y - y0) / (y1 - y0);
        (if right { fx > 0.55 } else { fx < 0.45 }) && (if upper { fy > 0.6 } else { fy < 0.4 })
    };
    corners
        .iter()
        .min_by_key(|(_, right, upper)| points.iter().filter(|p| near(**p, *right, *upper)).count())
        .map(|c| c.0.clone())
        .unwrap_or(SeriesLabelPosition::UpperRight)
}

fn draw_panel<DB: DrawingBackend>(
    panel: &Panel,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let data: Vec<CurveData> = panel
        .curves
        .iter()
        .map(|c| CurveData {
            band: if panel.bridge_gaps {
                band_points(&c.curve)
                    .into_iter()
                    .filter(Option::is_some)
                    .collect()
            } else {
                band_points(&c.curve)
            },
            theory: c
                .curve
                .theory
                .iter()
                .map(|t| t.map(|t| t / LN_10))
                .collect(),
        })
        .collect();
    let depth = panel
        .curves
        .iter()
        .map(|c| c.curve.measured.len().saturating_sub(1))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (y0, y1) = y_range(&data);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .margin_right(28)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .build_cartesian_2d(0.0..depth, y0..y1)?;
    let x_label = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 {
            format!("{}", x.round() as i64)
        } else {
            short_number(*x)
        }
    };
    chart
        .configure_mesh()
        .x_desc("layer l")
        .y_desc(panel.y_label.as_str())
        .axis_desc_style((FONT_FAMILY, 16))
        .label_style((FONT_FAMILY, 14))
        .x_labels((depth as usize + 1).min(11))
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y| log_tick_label(*y))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    // bands first, so that every line lies on top of every band
    for (i, curve) in data.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        for seg in segments(&curve.band) {
            // both edges inside the axes: a polygon that leaves them is
            // drawn in stripes by the backends
            let inside = |v: f64| v.clamp(y0, y1);
            let mut outline: Vec<(f64, f64)> = seg
                .iter()
                .map(|(x, m, _, h)| (*x, inside(h.unwrap_or(*m))))
                .collect();
            outline.extend(
                seg.iter()
                    .rev()
                    .map(|(x, m, l, _)| (*x, inside(l.unwrap_or(y0).min(*m)))),
            );
            chart.draw_series(std::iter::once(Polygon::new(outline, color.mix(0.18))))?;
        }
    }
    for (i, curve) in data.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<Option<(f64, f64)>> = curve
            .theory
            .iter()
            .enumerate()
            .map(|(l, t)| t.map(|t| (l as f64, t)))
            .collect();
        for seg in segments(&points) {
            chart.draw_series(DashedLineSeries::new(seg, 7, 5, color.stroke_width(2)))?;
        }
    }
    for (i, (drawn, curve)) in data.iter().zip(&panel.curves).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        for (k, seg) in segments(&drawn.band).into_iter().enumerate() {
            let series = chart.draw_series(LineSeries::new(
                seg.iter().map(|(x, m, _, _)| (*x, *m)),
                color.stroke_width(2),
            ))?;
            if k == 0 {
                series.label(curve.label.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
                });
            }
        }
    }
    // the two legend entries that say how to read every curve
    chart
        .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
        .label("mean-field theory (dashed)")
        .legend(|(x, y)| {
            DashedPathElement::new(vec![(x, y), (x + 22, y)], 5, 3, BLACK.stroke_width(2))
        });
    chart
        .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
        .label(format!("band: ± {BAND_SE} SE over networks"))
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 22, y + 5)], BLACK.mix(0.18).filled()));

    let mut points: Vec<(f64, f64)> = Vec::new();
    for curve in &data {
        points.extend(curve.band.iter().flatten().map(|(x, m, _, _)| (*x, *m)));
        points.extend(
            curve
                .theory
                .iter()
                .enumerate()
                .filter_map(|(l, t)| t.map(|t| (l as f64, t))),
        );
    }
    chart
        .configure_series_labels()
        .position(emptiest_corner(&points, (0.0, depth), (y0, y1)))
        .label_font((FONT_FAMILY, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// A run's network in a few words: `tanh / custom sigma_w2=1.5`.
pub fn scheme_name(spec: &RunSpec) -> String {
    let init = &spec.net.init;
    let mut name = format!("{} / {}", spec.net.act, init.scheme.name());
    if init.scheme == crate::model::init::Scheme::Custom {
        name += &format!(" sigma_w2={}", init.sigma_w2);
    }
    name
}

/// What the runs of a figure share: `widths 64x21, sigma_b2 0.05, batch 16,
/// 4 networks, seed 0`.
pub fn run_shape(spec: &RunSpec) -> String {
    let sigma_b2 = spec.net.bias_law(1).variance;
    format!(
        "widths {}{}, batch {}, {} networks, seed {}",
        super::report::widths_text(&spec.net.widths),
        if sigma_b2 > 0.0 {
            format!(", sigma_b2 {}", crate::io::plot::short_number(sigma_b2))
        } else {
            String::new()
        },
        spec.batch,
        spec.networks,
        spec.seed
    )
}
