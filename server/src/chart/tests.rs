//! What the picture must say, checked on the SVG text: the marks and labels carry classes and
//! data attributes for these tests (and for the browser tests).

use super::*;
use bioviewer_core::catalogue::{Catalogue, EMBEDDED_TRANSCODING, Transcoding};
use bioviewer_core::cda::writer::write_cr_bio;
use bioviewer_core::normalise::{InputDocument, Options, Provenance, normalise};

fn creatinine() -> Series {
    series_of("creatinine")
}

fn series_of(analyte: &str) -> Series {
    let end = CdaTime::parse_hl7("20261101").unwrap().epoch_seconds() / 86_400;
    let docs = bioviewer_core::demo::generate(2, 5, 3, end);
    let ins = docs[0].patient.clone();
    let reports: Vec<_> =
        docs.iter().filter(|d| d.patient == ins).map(|d| bioviewer_core::cda::parse(write_cr_bio(&d.report).as_bytes()).unwrap()).collect();
    let catalogue = Catalogue::embedded();
    let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
    let inputs: Vec<_> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| InputDocument { id: format!("d{i}"), report: Ok(r), provenance: Provenance::Operator })
        .collect();
    let history = normalise(&inputs, &catalogue, &transcoding, &Options::default());
    history.series.into_iter().find(|s| s.analyte == analyte).expect("a series of this analyte")
}

/// A series built by hand: (date YYYYMMDD, value, laboratory, reference low, high).
fn made(analyte: &str, decimals: usize, points: &[(&str, &str, &str, Option<&str>, Option<&str>)]) -> Series {
    let template =
        creatinine().points.into_iter().find(|p| p.status == PointStatus::Completed && p.comparator.is_none() && !p.derived).unwrap();
    Series {
        analyte: analyte.into(),
        name_fr: "Analyse".into(),
        name_en: "Test".into(),
        chapter: "biochemistry".into(),
        loinc_seen: Vec::new(),
        unit: Some("mmol/L".into()),
        decimals,
        points: points
            .iter()
            .map(|(date, value, lab, low, high)| Point {
                time: Some(CdaTime::parse_hl7(date).unwrap()),
                value: Decimal::parse(value),
                display: Some((*value).into()),
                unit: Some("mmol/L".into()),
                laboratory: Some((*lab).into()),
                reference_low: low.and_then(Decimal::parse),
                reference_high: high.and_then(Decimal::parse),
                comparability: Default::default(),
                critical: None,
                ..template.clone()
            })
            .collect(),
        change_not_judged: false,
    }
}

fn draw(series: &Series) -> String {
    render(series, Lang::Fr, &ChartOptions::default()).unwrap()
}

/// The value of `attr="..."` in each element of the SVG whose class is `class`.
fn attrs(svg: &str, class: &str, attr: &str) -> Vec<String> {
    let marker = format!("class=\"{class}\"");
    svg.match_indices(&marker)
        .map(|(i, _)| {
            let rest = &svg[i..];
            let tag_end = rest.find('>').unwrap();
            let tag = &rest[..tag_end];
            let key = format!(" {attr}=\"");
            let start = tag.find(&key).unwrap_or_else(|| panic!("{attr} in {tag}")) + key.len();
            tag[start..].split('"').next().unwrap().to_string()
        })
        .collect()
}

/// The text of each `<text class="{class}" ...>...</text>`, its lines joined by a space.
fn texts(svg: &str, class: &str) -> Vec<String> {
    let marker = format!("<text class=\"{class}\"");
    svg.match_indices(&marker)
        .map(|(i, _)| {
            let rest = &svg[i..];
            let open = rest.find('>').unwrap() + 1;
            let inner = &rest[open..rest.find("</text>").unwrap()];
            let mut text = String::new();
            let mut in_tag = false;
            for c in inner.chars() {
                match c {
                    '<' => {
                        in_tag = true;
                        if inner.contains("<tspan") && !text.ends_with(' ') && !text.is_empty() {
                            text.push(' ');
                        }
                    }
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.trim().to_string()
        })
        .collect()
}

fn numbers(s: &str) -> Vec<f64> {
    s.split_whitespace().map(|n| n.parse().unwrap()).collect()
}

/// The plot area as (x, y, width, height).
fn plot_box(svg: &str) -> (f64, f64, f64, f64) {
    let [x, y, w, h] = ["x", "y", "width", "height"].map(|a| attrs(svg, "bv-plot", a)[0].parse::<f64>().unwrap());
    (x, y, w, h)
}

/// Each reference range drawn: (laboratory, first result, last result).
fn bands(svg: &str) -> Vec<(String, i64, i64)> {
    let labs = attrs(svg, "bv-band", "data-lab");
    let from = attrs(svg, "bv-band", "data-from");
    let to = attrs(svg, "bv-band", "data-to");
    labs.into_iter().zip(from.iter().zip(&to)).map(|(l, (f, t))| (l, f.parse().unwrap(), t.parse().unwrap())).collect()
}

fn epoch(date: &str) -> i64 {
    CdaTime::parse_hl7(date).unwrap().epoch_seconds()
}

#[test]
fn every_point_is_drawn_with_its_exact_value_and_the_axis_says_the_unit() {
    let series = creatinine();
    let svg = draw(&series);
    assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
    let drawable = series.points.iter().filter(|p| p.status == PointStatus::Completed && p.in_display_unit && p.time.is_some()).count();
    assert_eq!(svg.matches("class=\"bv-point\"").count(), drawable);
    assert!(svg.contains("Créatinine (µmol/L)"), "the axis names the analyte and unit");
    let first = series.points.iter().find(|p| p.status == PointStatus::Completed).unwrap();
    assert!(svg.contains(&format!("{} µmol/L", first.display.as_deref().unwrap())), "exact value in a title");
    assert!(!svg.contains("<script"), "nothing executable");
}

#[test]
fn values_are_written_with_the_readers_decimal_separator() {
    let potassium = series_of("potassium");
    let point = potassium.points.iter().find(|p| p.display.as_deref().is_some_and(|d| d.contains('.'))).expect("a decimal value");
    let value = point.display.as_deref().unwrap();
    let french = render(&potassium, Lang::Fr, &ChartOptions::default()).unwrap();
    assert!(french.contains(&format!("{} mmol/L", value.replace('.', ","))), "French titles: {value} with a comma");
    let english = render(&potassium, Lang::En, &ChartOptions::default()).unwrap();
    assert!(english.contains(&format!("{value} mmol/L")), "English titles: {value} with a point");
}

#[test]
fn a_series_without_a_plottable_value_is_an_error() {
    let mut series = creatinine();
    series.points.retain(|p| p.time.is_none());
    assert!(matches!(render(&series, Lang::En, &ChartOptions::default()), Err(ChartError::Empty)));
}

#[test]
fn markup_in_laboratory_names_cannot_reach_the_page() {
    let mut series = creatinine();
    for p in &mut series.points {
        p.laboratory = Some("<script>alert(1)</script> & co".into());
    }
    let svg = draw(&series);
    assert!(!svg.contains("<script"), "escaped");
    assert!(svg.contains("&lt;script&gt;"), "shown as text in the legend");
}

#[test]
fn the_legend_is_outside_the_plot_area_never_over_the_points() {
    let series = creatinine();
    for width in [390, 900, 1400] {
        let svg = render(&series, Lang::Fr, &ChartOptions { width, ..Default::default() }).unwrap();
        let (_, py, _, ph) = plot_box(&svg);
        let legend = numbers(&attrs(&svg, "bv-legend", "data-box")[0]);
        assert!(legend[1] >= py + ph, "width {width}: the legend starts below the plot ({legend:?} vs bottom {})", py + ph);
        assert!(svg.contains("class=\"bv-legend-lab\""), "one entry per laboratory");
        let view_box = numbers(&attrs(&svg, &format!("bv-chart{}", if width < 560 { " bv-narrow" } else { "" }), "viewBox")[0]);
        assert!(legend[1] + legend[3] <= view_box[3], "width {width}: the legend fits inside the picture");
        assert_eq!(view_box[2], f64::from(width), "the picture is drawn at the width it is shown at");
    }
}

#[test]
fn the_svg_scales_to_its_container_instead_of_a_fixed_width() {
    let svg = draw(&creatinine());
    let root = &svg[..svg.find('>').unwrap()];
    assert!(root.contains("width=\"100%\"") && root.contains("viewBox=\"0 0 900 "), "{root}");
    assert!(!root.contains("height=\""), "the height follows the width: {root}");
}

#[test]
fn date_ticks_are_calendar_boundaries_inside_the_span_whatever_the_span() {
    // Years for a long history, quarters or months for a year, weeks or days for a month.
    let cases: [(&str, &str, fn(u8, u8) -> bool); 4] = [
        ("20150310", "20240611", |m, d| m == 1 && d == 1),
        ("20230310", "20240611", |m, d| [1, 4, 7, 10].contains(&m) && d == 1),
        ("20240105", "20240611", |_, d| d == 1),
        ("20240503", "20240521", |_, _| true),
    ];
    for (first, last, boundary) in cases {
        let series = made("x", 1, &[(first, "4.1", "A", None, None), (last, "4.6", "A", None, None)]);
        for width in [390, 1400] {
            let svg = render(&series, Lang::Fr, &ChartOptions { width, ..Default::default() }).unwrap();
            let ticks: Vec<i64> = attrs(&svg, "bv-xtick", "data-at").iter().map(|t| t.parse().unwrap()).collect();
            assert!(ticks.len() >= 2, "{first}–{last} at {width}: {ticks:?}");
            for t in &ticks {
                assert_eq!(t % DAY, 0, "midnight");
                assert!((epoch(first)..=epoch(last)).contains(t), "{first}–{last}: tick {t} inside the data's span");
                let (_, m, d) = bioviewer_core::cda::civil_from_days(t / DAY);
                assert!(boundary(m, d), "{first}–{last} at {width}: {m}/{d} is not the expected boundary");
            }
            let labels = texts(&svg, "bv-xtick");
            let xs: Vec<f64> = attrs(&svg, "bv-xtick", "x").iter().map(|x| x.parse().unwrap()).collect();
            for (label, x) in labels.iter().zip(&xs) {
                assert!(*x >= 0.0 && *x <= f64::from(width), "{label} drawn inside the picture");
            }
            // Labels do not run into each other.
            for pair in xs.windows(2) {
                assert!(pair[1] - pair[0] > 30.0, "{first}–{last} at {width}: ticks {xs:?} too close");
            }
        }
    }
}

#[test]
fn date_labels_are_in_the_readers_language() {
    let series = made("x", 1, &[("20240105", "4.1", "A", None, None), ("20240611", "4.6", "A", None, None)]);
    let french = texts(&render(&series, Lang::Fr, &ChartOptions { width: 1400, ..Default::default() }).unwrap(), "bv-xtick");
    assert_eq!(french[0], "févr. 2024", "{french:?}");
    assert!(french.contains(&"avr.".to_string()), "{french:?}");
    let english = texts(&render(&series, Lang::En, &ChartOptions { width: 1400, ..Default::default() }).unwrap(), "bv-xtick");
    assert_eq!(english[0], "Feb 2024", "{english:?}");
}

#[test]
fn value_labels_have_the_analytes_precision_never_15_000_for_15() {
    // TSH has three decimals: its axis reads 0, 5, 10, 15, never "15,000".
    let tsh = made("tsh", 3, &[("20240105", "0.012", "A", Some("0.4"), Some("4")), ("20240611", "14.2", "A", Some("0.4"), Some("4"))]);
    let labels = texts(&draw(&tsh), "bv-ytick");
    assert!(labels.iter().all(|l| !l.contains(",000") && !l.contains(",00")), "{labels:?}");
    assert!(labels.contains(&"15".to_string()) || labels.contains(&"16".to_string()), "{labels:?}");
    // An INR between 2 and 3 (one decimal): labels with one decimal at most, in French.
    let inr = made("inr", 1, &[("20240105", "2.1", "A", None, None), ("20240611", "2.4", "A", None, None)]);
    let labels = texts(&draw(&inr), "bv-ytick");
    assert!(labels.iter().any(|l| l.contains(',')), "{labels:?}");
    assert!(labels.iter().all(|l| l.split(',').nth(1).is_none_or(|d| d.len() == 1)), "one decimal at most: {labels:?}");
    // A whole-number analyte never gets a decimal, however flat.
    // Values that are all zero: an axis from zero, not from minus one.
    let zero = made("x", 1, &[("20240105", "0", "A", None, None), ("20240611", "0", "A", None, None)]);
    let labels = texts(&draw(&zero), "bv-ytick");
    assert!(labels.iter().all(|l| !l.starts_with('-')), "{labels:?}");
    let flat = made("x", 0, &[("20240105", "61", "A", None, None), ("20240611", "62", "A", None, None)]);
    let labels = texts(&draw(&flat), "bv-ytick");
    assert!(labels.iter().all(|l| !l.contains(',')), "{labels:?}");
}

#[test]
fn each_laboratorys_range_spans_only_its_own_dates_and_is_drawn_distinctly() {
    let series = made(
        "x",
        1,
        &[
            ("20200105", "4.1", "Lab A", Some("3.5"), Some("5.0")),
            ("20210105", "4.3", "Lab A", Some("3.5"), Some("5.0")),
            ("20220105", "4.6", "Lab B", Some("3.4"), Some("5.2")),
            ("20230105", "4.4", "Lab B", Some("3.4"), Some("5.2")),
        ],
    );
    let svg = draw(&series);
    assert_eq!(
        bands(&svg),
        [("Lab A".to_string(), epoch("20200105"), epoch("20210105")), ("Lab B".to_string(), epoch("20220105"), epoch("20230105"))],
        "each laboratory's range over its own results only"
    );
    assert!(svg.contains("fill=\"url(#bv-band-0)\"") && svg.contains("fill=\"url(#bv-band-1)\""), "each its own pattern");
    assert!(svg.contains("<pattern id=\"bv-band-1\"") && svg.contains("patternTransform=\"rotate(45)\""), "the second one hatched");
    assert_eq!(svg.matches("class=\"bv-legend-lab\"").count(), 2, "a legend entry each");
    assert!(svg.contains("class=\"bv-legend-range\""), "the legend says what a band is");
}

#[test]
fn a_laboratorys_range_stops_where_another_laboratorys_results_are() {
    let series = made(
        "x",
        1,
        &[
            ("20200105", "4.1", "Lab A", Some("3.5"), Some("5.0")),
            ("20200605", "4.3", "Lab A", Some("3.5"), Some("5.0")),
            ("20210105", "4.6", "Lab B", Some("3.4"), Some("5.2")),
            ("20220105", "4.4", "Lab A", Some("3.5"), Some("5.0")),
            ("20230105", "4.4", "Lab A", Some("3.5"), Some("5.0")),
        ],
    );
    let drawn = bands(&draw(&series));
    assert_eq!(drawn.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), ["Lab A", "Lab B", "Lab A"]);
    let b = epoch("20210105");
    for (lab, first, last) in &drawn {
        if lab == "Lab A" {
            assert!(!(*first..=*last).contains(&b), "Lab A's range is not drawn over Lab B's result");
        }
    }
}

#[test]
fn a_single_results_range_is_not_a_thin_bar() {
    let series =
        made("x", 1, &[("20200105", "4.1", "Lab A", Some("3.5"), Some("5.0")), ("20230105", "4.4", "Lab B", Some("3.4"), Some("5.2"))]);
    let svg = draw(&series);
    let widths: Vec<f64> = svg
        .match_indices("<g class=\"bv-band\"")
        .map(|(i, _)| {
            let rect = &svg[i..][svg[i..].find("<rect").unwrap()..];
            let start = rect.find("width=\"").unwrap() + 7;
            rect[start..].split('"').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(widths.len(), 2);
    assert!(widths.iter().all(|w| *w >= MIN_BAND - 0.01), "{widths:?}");
}

#[test]
fn a_target_band_is_drawn_with_its_legend_entry_when_given() {
    let inr = made("inr", 1, &[("20240105", "2.1", "A", None, None), ("20240611", "3.4", "A", None, None)]);
    assert!(!draw(&inr).contains("class=\"bv-target\""), "no target, no band");
    let target = Target { low: Decimal::parse("2.0"), high: Decimal::parse("3.0") };
    let svg = render(&inr, Lang::Fr, &ChartOptions { target: Some(&target), ..Default::default() }).unwrap();
    assert!(svg.contains("<g class=\"bv-target\""));
    assert_eq!(texts(&svg, "bv-legend-target").len(), 0, "the entry is a group");
    assert!(svg.contains("Cible 2,0 – 3,0"), "legend entry with the bounds at the analyte's precision");
    // An open bound: only the lower one drawn.
    let above = Target { low: Decimal::parse("2.5"), high: None };
    let svg = render(&inr, Lang::En, &ChartOptions { target: Some(&above), ..Default::default() }).unwrap();
    assert!(svg.contains("Target ≥ 2.5"));
    let band = &svg[svg.find("<g class=\"bv-target\"").unwrap()..];
    // plotters writes each bound as a `<polyline>`.
    assert_eq!(band[..band.find("</g>").unwrap()].matches("<polyline").count(), 1, "one bound, one line");
}

#[test]
fn a_second_analyte_gets_its_own_right_axis_style_and_legend_entry() {
    let creatinine = creatinine();
    let egfr = series_of("egfr_ckd_epi_2021");
    let svg = render(&creatinine, Lang::En, &ChartOptions { overlay: Some(&egfr), ..Default::default() }).unwrap();
    assert!(svg.contains("<g class=\"bv-right-axis\""), "a second axis");
    assert!(!texts(&svg, "bv-ytick-right").is_empty(), "with its own labels");
    let title = texts(&svg, "bv-axis-title-right");
    assert_eq!(title, ["eGFR (CKD-EPI 2021) (mL/min/1.73 m²)"], "named with its unit");
    let (px, _, pw, _) = plot_box(&svg);
    let right: Vec<f64> = attrs(&svg, "bv-ytick-right", "x").iter().map(|x| x.parse().unwrap()).collect();
    assert!(right.iter().all(|x| *x > px + pw), "right of the plot");
    assert!(svg.contains("class=\"bv-overlay-line\"") && svg.contains("stroke-dasharray=\"6 4\""), "a dashed line");
    let overlay_points = svg.matches("class=\"bv-point bv-overlay\"").count();
    let plottable = egfr.points.iter().filter(|p| p.status == PointStatus::Completed && p.in_display_unit && p.time.is_some()).count();
    assert_eq!(overlay_points, plottable, "every eGFR point focusable");
    assert!(svg.contains("eGFR (CKD-EPI 2021) (right axis)"), "its legend entry");
    assert!(svg.contains("aria-label=\"eGFR (CKD-EPI 2021) "), "its points say which analyte they are");
    // On a phone the two titles do not overlap: the right one goes under the left one.
    let phone = render(&creatinine, Lang::En, &ChartOptions { width: 360, overlay: Some(&egfr), ..Default::default() }).unwrap();
    let left_y: f64 = attrs(&phone, "bv-axis-title", "y")[0].parse().unwrap();
    let right_y: f64 = attrs(&phone, "bv-axis-title-right", "y")[0].parse().unwrap();
    assert!(right_y - left_y >= TITLE_FONT, "{left_y} {right_y}");
    // The same analyte twice is not an overlay.
    let same = render(&creatinine, Lang::En, &ChartOptions { overlay: Some(&creatinine), ..Default::default() }).unwrap();
    assert!(!same.contains("bv-right-axis"));
}

#[test]
fn a_second_analyte_without_a_result_in_the_period_is_said_not_silently_dropped() {
    let inr = made("inr", 1, &[("20240105", "2.1", "A", None, None), ("20240611", "3.4", "A", None, None)]);
    let mut haemoglobin = made("haemoglobin", 1, &[]);
    haemoglobin.name_en = "Haemoglobin".into();
    let svg = render(&inr, Lang::En, &ChartOptions { overlay: Some(&haemoglobin), ..Default::default() }).unwrap();
    assert!(!svg.contains("bv-right-axis"));
    assert!(svg.contains("Haemoglobin: No result in this period."), "the legend says so");
}

/// Every picture a page can ask for: with ranges, a target, a second analyte, on a phone.
fn every_kind_of_picture() -> Vec<String> {
    let creatinine = creatinine();
    let egfr = series_of("egfr_ckd_epi_2021");
    let target = Target { low: Decimal::parse("2.0"), high: None };
    let mut pictures = Vec::new();
    for width in [320, 390, 900, 1600] {
        for lang in [Lang::Fr, Lang::En] {
            pictures.push(
                render(&creatinine, lang, &ChartOptions { width, overlay: Some(&egfr), target: Some(&target), ..Default::default() })
                    .unwrap(),
            );
            pictures.push(render(&egfr, lang, &ChartOptions { width, ..Default::default() }).unwrap());
        }
    }
    pictures
}

#[test]
fn what_we_add_to_plotters_output_leaves_no_marker_and_no_attribute_twice() {
    for svg in every_kind_of_picture() {
        assert!(!svg.contains(MARK_OPEN) && !svg.contains(MARK_CLOSE), "every hook's marker replaced");
        assert_eq!(svg.matches("<svg").count(), 1, "one root");
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count(), "groups closed");
        // An attribute we set replaces plotters' own (two `fill`s would make the SVG invalid).
        for tag in svg.split('<').skip(1).map(|t| t.split('>').next().unwrap()) {
            let mut names: Vec<&str> =
                tag.split('"').step_by(2).filter_map(|part| part.trim().rsplit(' ').next()).filter(|n| n.ends_with('=')).collect();
            let count = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), count, "an attribute twice in <{tag}>");
        }
    }
}

#[test]
fn a_laboratory_name_cannot_pass_for_one_of_our_markers() {
    // A document's laboratory name holding the private-use characters our hooks use: drawn as
    // text, it must not be taken for a hook (which would repeat the points or a group).
    let mut series = creatinine();
    let drawable = draw(&series).matches("class=\"bv-point\"").count();
    for (i, p) in series.points.iter_mut().enumerate() {
        p.laboratory = Some(format!("{MARK_OPEN}{i}{MARK_CLOSE}Lab{MARK_OPEN}0{MARK_CLOSE}").into());
    }
    let svg = draw(&series);
    assert!(!svg.contains(MARK_OPEN) && !svg.contains(MARK_CLOSE));
    assert_eq!(svg.matches("class=\"bv-point\"").count(), drawable, "each point once");
    assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count(), "groups as drawn");
}

#[test]
fn the_right_axis_labels_stay_inside_the_picture_in_one_column() {
    // eGFR's labels have two and three digits (98, 100): plotters aligns labels of different
    // widths by their estimated width, which our markers must not distort.
    let creatinine = creatinine();
    let egfr = series_of("egfr_ckd_epi_2021");
    for width in [360, 900, 1600] {
        let svg = render(&creatinine, Lang::En, &ChartOptions { width, overlay: Some(&egfr), ..Default::default() }).unwrap();
        let xs: Vec<f64> = attrs(&svg, "bv-ytick-right", "x").iter().map(|x| x.parse().unwrap()).collect();
        let anchors = attrs(&svg, "bv-ytick-right", "text-anchor");
        assert!(xs.len() >= 2);
        assert!(
            xs.iter().all(|x| *x == xs[0]) && anchors.iter().all(|a| a == "start"),
            "width {width}: one column from the axis: {xs:?} {anchors:?}"
        );
        let (px, _, pw, _) = plot_box(&svg);
        assert!(xs[0] > px + pw && xs[0] < px + pw + 20.0, "width {width}: next to the axis: {xs:?}");
    }
}

#[test]
fn every_text_plotters_draws_is_anchored_inside_the_picture() {
    for svg in every_kind_of_picture() {
        let root = &svg[..svg.find('>').unwrap()];
        let view_box = numbers(root.split("viewBox=\"").nth(1).unwrap().split('"').next().unwrap());
        for text in svg.split("<text ").skip(1).map(|t| &t[..t.find('>').unwrap()]) {
            let at = |a: &str| -> f64 {
                format!(" {text}").split(&format!(" {a}=\"")).nth(1).unwrap().split('"').next().unwrap().parse().unwrap()
            };
            let (x, y) = (at("x"), at("y"));
            assert!((0.0..=view_box[2]).contains(&x) && (0.0..=view_box[3]).contains(&y), "{x},{y} outside {view_box:?}: <text {text}>");
        }
    }
}

/// Review finding: a value from an uploaded document read like a laboratory's in the chart.
#[test]
fn a_value_from_an_uploaded_document_says_so_in_its_title() {
    let series = creatinine();
    let last = series.points.iter().rev().find(|p| p.status == PointStatus::Completed && p.in_display_unit).unwrap();
    let uploaded = vec![last.sources[0].document.to_string()];
    let svg = render(&series, Lang::Fr, &ChartOptions { uploaded: &uploaded, ..Default::default() }).unwrap();
    let titles: Vec<&str> = svg.split("<title>").skip(1).map(|t| t.split("</title>").next().unwrap()).collect();
    let marked = titles.iter().filter(|t| t.contains("téléversé")).count();
    let from_that_document =
        series.points.iter().filter(|p| p.plottable().is_some() && p.sources[0].document == last.sources[0].document).count();
    assert!(marked >= 1 && marked <= from_that_document, "{marked} marked for {from_that_document} values of that document");
    // Review finding (seventh session): only the title said it; the point is marked on the line
    // (a dashed square) and the legend says what the mark is.
    assert_eq!(svg.matches("bv-point bv-uploaded").count(), marked, "each uploaded value marked on the line");
    assert!(svg.contains("bv-legend-uploaded") && svg.contains("valeur téléversée (hors courbe)"), "the legend says what the mark is");
    // Review finding (pages review, seventh session, second round): the line ran through the
    // uploaded value; it joins the laboratories' values only.
    let line_points = |svg: &str| -> usize {
        svg.split("class=\"bv-line\"")
            .skip(1)
            .map(|l| l.split("points=\"").nth(1).map_or(0, |p| p.split('"').next().unwrap().split(' ').count()))
            .sum()
    };
    let unmarked = render(&series, Lang::Fr, &ChartOptions::default()).unwrap();
    assert!(line_points(&unmarked) > 2, "the line found in the picture");
    assert_eq!(line_points(&svg) + marked, line_points(&unmarked), "each uploaded value off the line");
    let english = render(&series, Lang::En, &ChartOptions { uploaded: &uploaded, ..Default::default() }).unwrap();
    assert!(english.contains("— uploaded"));
    let none = render(&series, Lang::Fr, &ChartOptions::default()).unwrap();
    assert!(!none.contains("téléversé"), "laboratories' values are never marked");
    assert!(!none.contains("bv-uploaded") && !none.contains("bv-legend-uploaded"));
}
