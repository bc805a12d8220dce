//! A field over a grid (sigma_w^2 across, sigma_b^2 up) as coloured cells,
//! one or more panels side by side with one colour bar, and a curve drawn
//! over every panel: the order-to-chaos diagram of `varprop phase`, the
//! theoretical chi_1 = 1 line over the measured correlation.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{FONT_FAMILY, Figure, PALETTE, short_number};

/// One panel: its title and the values at (ys[iy], xs[ix]) as
/// `values[iy][ix]` (None where there is no value).
#[derive(Clone, Debug)]
pub struct HeatmapPanel {
    pub title: String,
    pub values: Vec<Vec<Option<f64>>>,
}

#[derive(Clone, Debug)]
pub struct HeatmapFigure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Grid coordinates, increasing.
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    pub panels: Vec<HeatmapPanel>,
    /// What the colour shows, and the values at the two ends of the scale.
    pub value_label: String,
    pub value_range: (f64, f64),
    /// A curve over every panel, as (x, y) pieces, and its legend label.
    pub line: Vec<Vec<(f64, f64)>>,
    pub line_label: String,
}

const PANEL_WIDTH: u32 = 520;
const BAR_WIDTH: u32 = 120;
const HEIGHT: u32 = 520;

/// Cell edges around grid coordinates: midway between neighbours, half a
/// spacing beyond the ends, but not below 0 when the grid starts at or
/// above 0 (the axes are variances).
pub fn cell_edges(v: &[f64]) -> Vec<f64> {
    let mut edges = unclamped_edges(v);
    if v.first().is_some_and(|v| *v >= 0.0) && edges[0] < 0.0 {
        edges[0] = 0.0;
    }
    edges
}

fn unclamped_edges(v: &[f64]) -> Vec<f64> {
    match v.len() {
        0 => vec![0.0, 1.0],
        1 => {
            let half = (0.05 * v[0].abs()).max(0.05);
            vec![v[0] - half, v[0] + half]
        }
        n => {
            let mut e = Vec::with_capacity(n + 1);
            e.push(v[0] - 0.5 * (v[1] - v[0]));
            for w in v.windows(2) {
                e.push(0.5 * (w[0] + w[1]));
            }
            e.push(v[n - 1] + 0.5 * (v[n - 1] - v[n - 2]));
            e
        }
    }
}

/// Viridis (matplotlib's default map: perceptually uniform, readable in
/// grey), sampled at 0, 1/8, ..., 1 and interpolated linearly.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

fn viridis(t: f64) -> RGBColor {
    let x = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn color_of(value: Option<f64>, (lo, hi): (f64, f64)) -> RGBColor {
    match value {
        Some(v) if v.is_finite() => {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            viridis(t)
        }
        _ => RGBColor(220, 220, 220),
    }
}

impl Figure for HeatmapFigure {
    fn size(&self) -> (u32, u32) {
        (
            PANEL_WIDTH * self.panels.len().max(1) as u32 + BAR_WIDTH,
            HEIGHT,
        )
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let body = root.titled(&self.title, (FONT_FAMILY, 19))?;
        let (w, _) = body.dim_in_pixel();
        let (fields, bar) = body.split_horizontally(w.saturating_sub(BAR_WIDTH));
        let areas = fields.split_evenly((1, self.panels.len().max(1)));
        let xe = cell_edges(&self.xs);
        let ye = cell_edges(&self.ys);
        for (panel, area) in self.panels.iter().zip(&areas) {
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, (FONT_FAMILY, 16))
                .margin(10)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(xe[0]..xe[xe.len() - 1], ye[0]..ye[ye.len() - 1])?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc(self.x_label.as_str())
                .y_desc(self.y_label.as_str())
                .axis_desc_style((FONT_FAMILY, 15))
                .label_style((FONT_FAMILY, 13))
                .x_label_formatter(&|x| short_number(*x))
                .y_label_formatter(&|y| short_number(*y))
                .draw()?;
            let mut cells = Vec::new();
            for (iy, row) in panel.values.iter().enumerate() {
                for (ix, v) in row.iter().enumerate() {
                    cells.push(Rectangle::new(
                        [(xe[ix], ye[iy]), (xe[ix + 1], ye[iy + 1])],
                        color_of(*v, self.value_range).filled(),
                    ));
                }
            }
            chart.draw_series(cells)?;
            let line_color = PALETTE[3];
            for (k, piece) in self.line.iter().enumerate() {
                let series = chart
                    .draw_series(LineSeries::new(piece.clone(), line_color.stroke_width(3)))?;
                if k == 0 {
                    series
                        .label(self.line_label.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 22, y)], line_color.stroke_width(3))
                        });
                }
            }
            if !self.line.is_empty() {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::LowerRight)
                    .label_font((FONT_FAMILY, 14))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.4))
                    .draw()?;
            }
        }
        // the colour bar
        let (lo, hi) = self.value_range;
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let mut chart = ChartBuilder::on(&bar)
            .margin_top(40)
            .margin_bottom(54)
            .margin_right(10)
            .y_label_area_size(62)
            .build_cartesian_2d(0.0..1.0, lo..hi)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc(self.value_label.as_str())
            .axis_desc_style((FONT_FAMILY, 15))
            .label_style((FONT_FAMILY, 13))
            .y_label_formatter(&|y| short_number(*y))
            .draw()?;
        let steps = 100;
        chart.draw_series((0..steps).map(|k| {
            let a = lo + (hi - lo) * k as f64 / steps as f64;
            let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
            Rectangle::new(
                [(0.0, a), (1.0, b)],
                color_of(Some(0.5 * (a + b)), (lo, hi)).filled(),
            )
        }))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_surround_the_grid_points() {
        assert_eq!(
            super::cell_edges(&[1.0, 2.0, 4.0]),
            vec![0.5, 1.5, 3.0, 5.0]
        );
        assert_eq!(super::cell_edges(&[0.0, 1.0]), vec![0.0, 0.5, 1.5]);
        assert_eq!(super::cell_edges(&[-1.0]), vec![-1.05, -0.95]);
    }
}
