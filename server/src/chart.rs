//! Trend charts of one analyte, rendered on the server as SVG with plotters.
//!
//! What a clinician must be able to trust in the picture: a proportional time axis; the y axis
//! labelled with the analyte and its unit; each laboratory's reference band; points coloured by
//! laboratory; censored values drawn as open triangles at their bound (never as exact points);
//! values Bioviewer derived drawn hollow; the line broken where laboratory, method, range or
//! unit change; and every point's exact value reachable by hover, keyboard focus and touch (an
//! SVG `<title>` on a focusable mark).

use plotters::prelude::*;

use bioviewer_app::i18n::{Lang, Msg};
use bioviewer_core::cda::Comparator;
use bioviewer_core::normalise::{Point, PointStatus, Series};

/// Colour-blind-safe palette (Okabe–Ito), one colour per laboratory.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
];

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("nothing to draw: no numeric value in the display unit")]
    Empty,
    #[error("drawing failed: {0}")]
    Drawing(String),
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Text handed to plotters, which writes it into the SVG: stripped of markup characters.
fn plain(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '<' | '>' | '&' | '"')).collect()
}

fn date_label(epoch: i64, lang: Lang) -> String {
    let (y, m, d) = bioviewer_core::cda::civil_from_days(epoch.div_euclid(86_400));
    match lang {
        Lang::Fr => format!("{d:02}/{m:02}/{y}"),
        Lang::En => format!("{y}-{m:02}-{d:02}"),
    }
}

struct Mark<'p> {
    epoch: i64,
    value: f64,
    point: &'p Point,
    lab: usize,
}

/// Draws the series as an SVG document. `from`/`to` (epoch seconds) zoom the time axis.
pub fn render(series: &Series, lang: Lang, from: Option<i64>, to: Option<i64>, width: u32, height: u32) -> Result<String, ChartError> {
    let mut labs: Vec<String> = Vec::new();
    let mut marks: Vec<Mark<'_>> = Vec::new();
    for p in &series.points {
        let (Some(time), Some(value)) = (p.time, p.value.as_ref()) else { continue };
        if p.status != PointStatus::Completed || !p.in_display_unit {
            continue;
        }
        let epoch = time.epoch_seconds();
        if from.is_some_and(|f| epoch < f) || to.is_some_and(|t| epoch > t) {
            continue;
        }
        let lab_name = p.laboratory.as_deref().unwrap_or("?").to_string();
        let lab = labs.iter().position(|l| *l == lab_name).unwrap_or_else(|| {
            labs.push(lab_name);
            labs.len() - 1
        });
        marks.push(Mark { epoch, value: value.to_f64(), point: p, lab });
    }
    if marks.is_empty() {
        return Err(ChartError::Empty);
    }
    let drawing = |e: &dyn std::fmt::Display| ChartError::Drawing(e.to_string());
    let (mut x0, mut x1) = (marks.iter().map(|m| m.epoch).min().unwrap_or(0), marks.iter().map(|m| m.epoch).max().unwrap_or(0));
    if x1 - x0 < 86_400 * 7 {
        x0 -= 86_400 * 7;
        x1 += 86_400 * 7;
    }
    let pad_x = (x1 - x0) / 30;
    let (x0, x1) = (x0 - pad_x, x1 + pad_x);
    let bounds = marks.iter().flat_map(|m| {
        [Some(m.value), m.point.reference_low.as_ref().map(|d| d.to_f64()), m.point.reference_high.as_ref().map(|d| d.to_f64())]
    });
    let values: Vec<f64> = bounds.flatten().collect();
    let (mut y0, mut y1) = (values.iter().copied().fold(f64::INFINITY, f64::min), values.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    if (y1 - y0).abs() < f64::EPSILON {
        y0 -= 1.0;
        y1 += 1.0;
    }
    let pad_y = (y1 - y0) * 0.08;
    let (y0, y1) = ((y0 - pad_y).min(if y0 >= 0.0 { 0.0f64.max(y0 - pad_y) } else { y0 - pad_y }), y1 + pad_y);

    let name = match lang {
        Lang::Fr => &series.name_fr,
        Lang::En => &series.name_en,
    };
    let unit = lang.unit(series.unit.as_deref());
    let axis = if unit.is_empty() { name.clone() } else { format!("{name} ({unit})") };
    let mut svg = String::new();
    let mut overlay = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| drawing(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| drawing(&e))?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|x| date_label(*x, lang))
            .y_label_formatter(&|y| {
                let text = format!("{y:.decimals$}", decimals = series.decimals.min(3));
                lang.decimal(&text)
            })
            .y_desc(plain(&axis))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| drawing(&e))?;

        // Each laboratory's reference band over the span of its points.
        for (lab, _) in labs.iter().enumerate() {
            let own: Vec<&Mark<'_>> = marks.iter().filter(|m| m.lab == lab).collect();
            let (Some(first), Some(last)) = (own.first(), own.last()) else { continue };
            let low = own.iter().rev().find_map(|m| m.point.reference_low.as_ref()).map(|d| d.to_f64());
            let high = own.iter().rev().find_map(|m| m.point.reference_high.as_ref()).map(|d| d.to_f64());
            if low.is_none() && high.is_none() {
                continue;
            }
            let colour = PALETTE[lab % PALETTE.len()];
            let band = Rectangle::new(
                [(first.epoch - pad_x / 3, high.unwrap_or(y1)), (last.epoch + pad_x / 3, low.unwrap_or(y0))],
                colour.mix(0.10).filled(),
            );
            chart.draw_series(std::iter::once(band)).map_err(|e| drawing(&e))?;
        }

        // The line, broken where comparability changes; censored and derived points are not
        // joined as if they were measured values.
        let mut segment: Vec<(i64, f64)> = Vec::new();
        let mut segments: Vec<Vec<(i64, f64)>> = Vec::new();
        for m in &marks {
            let joinable = m.point.comparator.is_none() && !m.point.derived;
            if !joinable {
                continue;
            }
            if m.point.comparability.any() && !segment.is_empty() {
                segments.push(std::mem::take(&mut segment));
            }
            segment.push((m.epoch, m.value));
        }
        segments.push(segment);
        for s in segments.into_iter().filter(|s| s.len() > 1) {
            chart.draw_series(LineSeries::new(s, RGBColor(110, 110, 110).stroke_width(2))).map_err(|e| drawing(&e))?;
        }

        // Legend: one entry per laboratory.
        for (lab, lab_name) in labs.iter().enumerate() {
            let colour = PALETTE[lab % PALETTE.len()];
            chart
                .draw_series(std::iter::empty::<Circle<(i64, f64), i32>>())
                .map_err(|e| drawing(&e))?
                .label(plain(lab_name))
                .legend(move |(x, y)| Circle::new((x + 6, y), 5, colour.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| drawing(&e))?;

        // Points are drawn by us, not by plotters, so that each carries its exact value as a
        // title and can take keyboard focus.
        for m in &marks {
            let (px, py) = chart.backend_coord(&(m.epoch, m.value));
            let colour = PALETTE[m.lab % PALETTE.len()];
            let fill = format!("rgb({},{},{})", colour.0, colour.1, colour.2);
            let source = m.point.sources.first();
            let original = match (source.and_then(|s| s.original_value.as_deref()), source.map(|s| s.converted)) {
                (Some(v), Some(true)) => {
                    format!(" — {} {}", lang.decimal(v), source.and_then(|s| s.original_unit.as_deref()).unwrap_or(""))
                }
                _ => String::new(),
            };
            let comparator = m.point.comparator.map(Comparator::symbol).unwrap_or("");
            let derived = if m.point.derived { format!(" ({})", Msg::ComputedValue.text(lang)) } else { String::new() };
            let title = format!(
                "{}: {}{} {}{}{} — {}",
                date_label(m.epoch, lang),
                comparator,
                lang.decimal(m.point.display.as_deref().unwrap_or("")),
                unit,
                derived,
                original,
                m.point.laboratory.as_deref().unwrap_or(""),
            );
            let shape = match m.point.comparator {
                Some(Comparator::Less | Comparator::LessOrEqual) => {
                    format!(
                        r#"<path d="M{} {} L{} {} L{} {} Z" fill="white" stroke="{fill}" stroke-width="2"/>"#,
                        px - 6,
                        py - 4,
                        px + 6,
                        py - 4,
                        px,
                        py + 6
                    )
                }
                Some(Comparator::Greater | Comparator::GreaterOrEqual) => {
                    format!(
                        r#"<path d="M{} {} L{} {} L{} {} Z" fill="white" stroke="{fill}" stroke-width="2"/>"#,
                        px - 6,
                        py + 4,
                        px + 6,
                        py + 4,
                        px,
                        py - 6
                    )
                }
                None if m.point.derived => format!(r#"<circle cx="{px}" cy="{py}" r="5" fill="white" stroke="{fill}" stroke-width="2"/>"#),
                None => format!(r#"<circle cx="{px}" cy="{py}" r="5" fill="{fill}"/>"#),
            };
            overlay.push_str(&format!(
                r#"<g class="bv-point" tabindex="0" role="img" aria-label="{t}"><title>{t}</title>{shape}<circle cx="{px}" cy="{py}" r="12" fill="transparent"/></g>"#,
                t = escape(&title)
            ));
        }
        root.present().map_err(|e| drawing(&e))?;
    }
    let close = svg.rfind("</svg>").ok_or_else(|| ChartError::Drawing("no closing tag".into()))?;
    svg.insert_str(close, &overlay);
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bioviewer_core::catalogue::{Catalogue, EMBEDDED_TRANSCODING, Transcoding};
    use bioviewer_core::cda::writer::write_cr_bio;
    use bioviewer_core::normalise::{InputDocument, Options, Provenance, normalise};

    fn creatinine() -> Series {
        series_of("creatinine")
    }

    fn series_of(analyte: &str) -> Series {
        let end = bioviewer_core::cda::CdaTime::parse_hl7("20261101").unwrap().epoch_seconds() / 86_400;
        let docs = bioviewer_core::demo::generate(2, 5, 3, end);
        let ins = docs[0].patient.clone();
        let reports: Vec<_> = docs
            .iter()
            .filter(|d| d.patient == ins)
            .map(|d| bioviewer_core::cda::parse(write_cr_bio(&d.report).as_bytes()).unwrap())
            .collect();
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let inputs: Vec<_> = reports.iter().enumerate().map(|(i, r)| InputDocument { id: format!("d{i}"), report: Ok(r), provenance: Provenance::Operator }).collect();
        let history = normalise(&inputs, &catalogue, &transcoding, &Options::default());
        history.series.into_iter().find(|s| s.analyte == analyte).expect("a series of this analyte")
    }

    #[test]
    fn every_point_is_drawn_with_its_exact_value_and_the_axis_says_the_unit() {
        let series = creatinine();
        let svg = render(&series, Lang::Fr, None, None, 800, 400).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        let drawable = series.points.iter().filter(|p| p.status == PointStatus::Completed && p.in_display_unit && p.time.is_some()).count();
        assert_eq!(svg.matches("class=\"bv-point\"").count(), drawable);
        assert!(svg.contains("Créatinine (µmol/L)"), "y axis names the analyte and unit");
        let first = series.points.iter().find(|p| p.status == PointStatus::Completed).unwrap();
        assert!(svg.contains(&format!("{} µmol/L", first.display.as_deref().unwrap())), "exact value in a title");
        assert!(!svg.contains("<script"), "nothing executable");
    }

    #[test]
    fn values_are_written_with_the_readers_decimal_separator() {
        let potassium = series_of("potassium");
        let point = potassium.points.iter().find(|p| p.display.as_deref().is_some_and(|d| d.contains('.'))).expect("a decimal value");
        let value = point.display.as_deref().unwrap();
        let french = render(&potassium, Lang::Fr, None, None, 800, 400).unwrap();
        assert!(french.contains(&format!("{} mmol/L", value.replace('.', ","))), "French titles: {value} with a comma");
        let english = render(&potassium, Lang::En, None, None, 800, 400).unwrap();
        assert!(english.contains(&format!("{value} mmol/L")), "English titles: {value} with a point");
    }

    #[test]
    fn zoom_keeps_only_the_range_and_an_empty_range_is_an_error() {
        let series = creatinine();
        let times: Vec<i64> = series.points.iter().filter_map(|p| p.time.map(|t| t.epoch_seconds())).collect();
        let middle = times[times.len() / 2];
        let svg = render(&series, Lang::En, Some(middle), None, 800, 400).unwrap();
        let kept = series
            .points
            .iter()
            .filter(|p| p.status == PointStatus::Completed && p.in_display_unit && p.time.is_some_and(|t| t.epoch_seconds() >= middle))
            .count();
        assert_eq!(svg.matches("class=\"bv-point\"").count(), kept);
        assert!(matches!(render(&series, Lang::En, Some(0), Some(1), 800, 400), Err(ChartError::Empty)));
    }

    #[test]
    fn markup_in_laboratory_names_cannot_reach_the_page() {
        let mut series = creatinine();
        for p in &mut series.points {
            p.laboratory = Some("<script>alert(1)</script> & co".into());
        }
        let svg = render(&series, Lang::Fr, None, None, 800, 400).unwrap();
        assert!(!svg.contains("<script"), "escaped or stripped");
    }
}
