//! PNG charts with no system dependency: a small raster renderer (lines,
//! bars, axes with "nice" ticks, linear or log y) with the public-domain 8×8
//! bitmap font of `font8x8`, encoded by the `png` crate. (plotters needs a
//! font backend — fontconfig/FreeType through font-kit, or a TTF file
//! shipped for ab_glyph — for any text; this keeps CI free of both.)

use std::path::Path;

use super::Result;

type Rgb = [u8; 3];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];
const PALETTE: [Rgb; 6] = [
    [31, 119, 180],
    [230, 110, 10],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];

/// The colour of series `i` (ours first: blue; upstream second: orange).
fn color(i: usize) -> Rgb {
    PALETTE[i % PALETTE.len()]
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Canvas {
        Canvas {
            w,
            h,
            px: [WHITE]
                .iter()
                .cycle()
                .take(w * h)
                .flatten()
                .copied()
                .collect(),
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.set(x, y, c);
            }
        }
    }

    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb, thick: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut e) = (x0, y0, dx + dy);
        let mut guard = 0;
        loop {
            self.rect(x, y, x + thick - 1, y + thick - 1, c);
            if (x == x1 && y == y1) || guard > 100_000 {
                break;
            }
            guard += 1;
            let e2 = 2 * e;
            if e2 >= dy {
                e += dy;
                x += sx;
            }
            if e2 <= dx {
                e += dx;
                y += sy;
            }
        }
    }

    fn glyph(ch: char) -> [u8; 8] {
        let i = ch as usize;
        if i < 128 {
            font8x8::legacy::BASIC_LEGACY[i]
        } else {
            font8x8::legacy::BASIC_LEGACY[b'?' as usize]
        }
    }

    /// Text with its top-left corner at (x, y).
    fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let g = Self::glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        let px = x + (k as i64 * 8 + col) * scale;
                        let py = y + row as i64 * scale;
                        self.rect(px, py, px + scale - 1, py + scale - 1, c);
                    }
                }
            }
        }
    }

    /// Text rotated 90° counter-clockwise, its baseline going up from (x, y).
    fn text_up(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let g = Self::glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.set(x + row as i64, y - (k as i64 * 8 + col), c);
                    }
                }
            }
        }
    }

    fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::File::create(path)?;
        let mut enc =
            png::Encoder::new(std::io::BufWriter::new(file), self.w as u32, self.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::High);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.px)?;
        w.finish()?;
        Ok(())
    }
}

fn text_width(s: &str, scale: i64) -> i64 {
    s.chars().count() as i64 * 8 * scale
}

/// Tick label for a value.
fn label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6).replace(".0M", "M")
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || (v.fract() == 0.0 && a >= 1.0) {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.0e}")
    }
}

/// Ticks at 1/2/5 × 10^k covering [lo, hi].
fn nice_ticks(lo: f64, hi: f64, want: usize) -> (f64, f64, Vec<f64>) {
    let span = (hi - lo).max(1e-12);
    let raw = span / want.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut t = start;
    while t <= end + step * 0.5 && ticks.len() < 50 {
        ticks.push(t);
        t += step;
    }
    (start, end, ticks)
}

/// Axis mapping: value → pixel.
#[derive(Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    p0: f64,
    p1: f64,
}

impl Axis {
    fn map(&self, v: f64) -> i64 {
        let (lo, hi, v) = if self.log {
            (self.lo.log10(), self.hi.log10(), v.max(self.lo).log10())
        } else {
            (self.lo, self.hi, v)
        };
        let f = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        (self.p0 + f * (self.p1 - self.p0)).round() as i64
    }
}

fn y_axis(lo: f64, hi: f64, log: bool) -> (f64, f64, Vec<f64>) {
    if log {
        let lo = lo.max(1e-9);
        let (a, b) = (
            lo.log10().floor() as i32,
            hi.max(lo * 1.5).log10().ceil() as i32,
        );
        let mut ticks = Vec::new();
        for e in a..=b {
            let p = 10f64.powi(e);
            ticks.push(p);
            if b - a <= 2 {
                ticks.push(2.0 * p);
                ticks.push(5.0 * p);
            }
        }
        let (lo, hi) = (10f64.powi(a), 10f64.powi(b));
        ticks.retain(|t| *t >= lo && *t <= hi);
        (lo, hi, ticks)
    } else {
        nice_ticks(lo.min(0.0), hi, 6)
    }
}

const W: usize = 960;
const H: usize = 540;
const LEFT: i64 = 90;
const RIGHT: i64 = 30;
const TOP: i64 = 56;
const BOTTOM: i64 = 70;

/// Title, frame, y grid and labels; returns the y axis.
fn frame(c: &mut Canvas, title: &str, y_label: &str, lo: f64, hi: f64, log: bool) -> Axis {
    c.text((W as i64 - text_width(title, 2)) / 2, 14, title, 2, BLACK);
    let (lo, hi, ticks) = y_axis(lo, hi, log);
    let ya = Axis {
        lo,
        hi,
        log,
        p0: (H as i64 - BOTTOM) as f64,
        p1: TOP as f64,
    };
    for t in ticks {
        let y = ya.map(t);
        c.line((LEFT, y), (W as i64 - RIGHT, y), GRID, 1);
        let l = label(t);
        c.text(LEFT - 6 - text_width(&l, 1), y - 4, &l, 1, BLACK);
    }
    let (x0, y0, x1, y1) = (LEFT, TOP, W as i64 - RIGHT, H as i64 - BOTTOM);
    c.line((x0, y0), (x0, y1), BLACK, 1);
    c.line((x0, y1), (x1, y1), BLACK, 1);
    let mid = (y0 + y1) / 2 + text_width(y_label, 1) / 2;
    c.text_up(12, mid, y_label, BLACK);
    ya
}

fn legend(c: &mut Canvas, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let wmax = names.iter().map(|n| text_width(n, 1)).max().unwrap_or(0);
    let (x1, y0) = (W as i64 - RIGHT - 8, TOP + 8);
    let x0 = x1 - wmax - 34;
    let y1 = y0 + 14 * names.len() as i64 + 8;
    c.rect(x0, y0, x1, y1, WHITE);
    c.line((x0, y0), (x1, y0), BLACK, 1);
    c.line((x0, y1), (x1, y1), BLACK, 1);
    c.line((x0, y0), (x0, y1), BLACK, 1);
    c.line((x1, y0), (x1, y1), BLACK, 1);
    for (i, n) in names.iter().enumerate() {
        let y = y0 + 8 + 14 * i as i64;
        c.rect(x0 + 6, y + 1, x0 + 22, y + 6, color(i));
        c.text(x0 + 28, y, n, 1, BLACK);
    }
}

/// One line of a [`LineChart`].
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) points, drawn in order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    /// Title (top).
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Draw a marker at every point.
    pub markers: bool,
}

impl LineChart {
    /// Renders to `path` (PNG).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut c = Canvas::new(W, H);
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut xlo, mut xhi, mut ylo, mut yhi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            if x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0) {
                xlo = xlo.min(x);
                xhi = xhi.max(x);
                ylo = ylo.min(y);
                yhi = yhi.max(y);
            }
        }
        if xlo > xhi {
            (xlo, xhi, ylo, yhi) = (0.0, 1.0, 1.0, 10.0);
        }
        if yhi <= ylo {
            yhi = ylo.abs().max(1.0) * 2.0;
        }
        let ya = frame(
            &mut c,
            &self.title,
            &self.y_label,
            ylo,
            yhi * 1.05,
            self.log_y,
        );
        let (xlo, xhi, xticks) = nice_ticks(xlo, if xhi > xlo { xhi } else { xlo + 1.0 }, 8);
        let xa = Axis {
            lo: xlo,
            hi: xhi,
            log: false,
            p0: LEFT as f64,
            p1: (W as i64 - RIGHT) as f64,
        };
        let ybase = H as i64 - BOTTOM;
        for t in xticks {
            let x = xa.map(t);
            c.line((x, ybase), (x, ybase + 4), BLACK, 1);
            let l = label(t);
            c.text(x - text_width(&l, 1) / 2, ybase + 8, &l, 1, BLACK);
        }
        c.text(
            (W as i64 - text_width(&self.x_label, 1)) / 2,
            H as i64 - 24,
            &self.x_label,
            1,
            BLACK,
        );
        for (i, s) in self.series.iter().enumerate() {
            let mut prev: Option<(i64, i64)> = None;
            for &(x, y) in &s.points {
                if !x.is_finite() || !y.is_finite() || (self.log_y && y <= 0.0) {
                    prev = None;
                    continue;
                }
                let p = (xa.map(x), ya.map(y));
                if let Some(q) = prev {
                    c.line(q, p, color(i), 2);
                }
                if self.markers || s.points.len() <= 40 {
                    c.rect(p.0 - 2, p.1 - 2, p.0 + 3, p.1 + 3, color(i));
                }
                prev = Some(p);
            }
        }
        legend(
            &mut c,
            &self
                .series
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>(),
        );
        c.save(path)
    }
}

/// A grouped bar chart: one group per category, one bar per series.
#[derive(Debug, Clone, Default)]
pub struct BarChart {
    /// Title (top).
    pub title: String,
    /// Y axis label.
    pub y_label: String,
    /// Group labels (x axis).
    pub categories: Vec<String>,
    /// (legend text, one value per category).
    pub series: Vec<(String, Vec<f64>)>,
    /// Logarithmic y axis.
    pub log_y: bool,
}

impl BarChart {
    /// Renders to `path` (PNG).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut c = Canvas::new(W, H);
        let vals = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite() && (!self.log_y || *v > 0.0));
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for v in vals {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            (lo, hi) = (1.0, 10.0);
        }
        let lo = if self.log_y { lo / 2.0 } else { 0.0 };
        let ya = frame(
            &mut c,
            &self.title,
            &self.y_label,
            lo,
            hi * 1.15,
            self.log_y,
        );
        let ybase = H as i64 - BOTTOM;
        let n = self.categories.len().max(1) as i64;
        let group_w = (W as i64 - RIGHT - LEFT) / n;
        let k = self.series.len().max(1) as i64;
        let bar_w = ((group_w - 24) / k).clamp(4, 120);
        for (g, cat) in self.categories.iter().enumerate() {
            let gx = LEFT + g as i64 * group_w + (group_w - bar_w * k) / 2;
            for (si, (_, values)) in self.series.iter().enumerate() {
                let Some(&v) = values.get(g) else { continue };
                if !v.is_finite() || (self.log_y && v <= 0.0) {
                    continue;
                }
                let x0 = gx + si as i64 * bar_w;
                let y = ya.map(v);
                c.rect(x0 + 1, y, x0 + bar_w - 2, ybase - 1, color(si));
                let l = label(v);
                let lx = x0 + (bar_w - text_width(&l, 1)) / 2;
                c.text(lx, y - 11, &l, 1, BLACK);
            }
            let cx = LEFT + g as i64 * group_w + (group_w - text_width(cat, 1)) / 2;
            c.text(cx, ybase + 10, cat, 1, BLACK);
        }
        legend(
            &mut c,
            &self
                .series
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>(),
        );
        c.save(path)
    }
}
