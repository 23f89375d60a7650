//! How a result's judgement is said, on every page and in the chart's tips: the flag shown
//! (against the patient's treatment target when a clinician set one, else against the
//! laboratory's range: `Point::shown_flag`), and the critical marker, set apart from ordinary
//! flags by a symbol and words, never by colour alone.
//!
//! Symbols and CSS classes (for the legend): `‼` critical (`critical`, chart `bv-critical`),
//! `◎` judged against the treatment target (`target`, chart `bv-target-judged`).

use crate::components::flag_label;
use crate::i18n::{Lang, Msg};
use crate::model::Point;
use bioviewer_core::judge::Critical;

/// Beyond a published critical limit.
pub const CRITICAL_SYMBOL: &str = "‼";
/// Judged against the patient's treatment target rather than the laboratory's range.
pub const TARGET_SYMBOL: &str = "◎";

/// `‼ valeur critique haute`.
pub fn critical_label(critical: Critical, lang: Lang) -> String {
    let msg = match critical {
        Critical::High => Msg::CriticalHigh,
        Critical::Low => Msg::CriticalLow,
    };
    format!("{CRITICAL_SYMBOL} {}", msg.text(lang))
}

/// The laboratory's range of a result at the analyte's precision (`0,8 – 1,2`, `≤ 5`, `≥ 60`),
/// or its text when it gave no bounds. A bound alone is written inclusive, as CDA's reference
/// ranges are unless they say otherwise and as the document page writes it: `< 5,20` beside an
/// unflagged 5,20 read as a contradiction.
pub fn range_text(point: &Point, decimals: usize, lang: Lang) -> String {
    let bound = |d: &bioviewer_core::cda::Decimal| lang.decimal(&d.rounded(decimals));
    match (&point.reference_low, &point.reference_high) {
        (Some(l), Some(h)) => format!("{} – {}", bound(l), bound(h)),
        (None, Some(h)) => format!("≤ {}", bound(h)),
        (Some(l), None) => format!("≥ {}", bound(l)),
        (None, None) => point.reference_text.clone().unwrap_or_default(),
    }
}

/// The flag shown in words: `↑ élevé par rapport à la cible`, `◎ dans la cible`, `↑ élevé`,
/// with the critical marker first when the value is critical.
pub fn judged_label(point: &Point, lang: Lang) -> String {
    let mut parts = Vec::new();
    if let Some(c) = point.critical {
        parts.push(critical_label(c, lang));
    }
    if let Some(f) = point.shown_flag() {
        parts.push(match (&point.target_flag, &*f.code) {
            (Some(_), "N") => format!("{TARGET_SYMBOL} {}", Msg::InTarget.text(lang)),
            (Some(_), code) => format!("{} {}", flag_label(code, lang), Msg::AgainstTarget.text(lang)),
            (None, code) => flag_label(code, lang),
        });
    }
    parts.join(" · ")
}

/// When the result was judged against a target: the laboratory's range and its own flag, so it
/// is never hidden (`plage du laboratoire : 0,8 – 1,2 (↑ élevé)`); otherwise nothing.
pub fn laboratory_judgement(point: &Point, decimals: usize, lang: Lang) -> Option<String> {
    point.target_flag.as_ref()?;
    let range = range_text(point, decimals, lang);
    let flag = point.flag.as_ref().map(|f| format!(" ({})", flag_label(&f.code, lang))).unwrap_or_default();
    let colon = if lang == Lang::Fr { " :" } else { ":" };
    Some(format!("{}{colon} {}{flag}", capitalised(Msg::LabRange.text(lang)), if range.is_empty() { "?".into() } else { range }))
}

pub(crate) fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bioviewer_core::cda::Decimal;
    use bioviewer_core::normalise::Flag;

    /// Review finding: the table wrote `< 5,20` where the report says `≤ 5,20`.
    #[test]
    fn a_range_with_one_bound_is_written_as_the_report_writes_it() {
        let high = Point { reference_high: Decimal::parse("5.20"), ..Default::default() };
        assert_eq!(range_text(&high, 2, Lang::Fr), "≤ 5,20");
        let low = Point { reference_low: Decimal::parse("60"), ..Default::default() };
        assert_eq!(range_text(&low, 0, Lang::En), "≥ 60");
    }

    fn inr(value: &str, lab: &str, target: Option<&str>, critical: Option<Critical>) -> Point {
        Point {
            time: None,
            value: Decimal::parse(value),
            display: Some(value.into()),
            unit: Some("1".into()),
            in_display_unit: true,
            flag: Some(Flag { code: lab.into(), computed: false }),
            reference_low: Decimal::parse("0.8"),
            reference_high: Decimal::parse("1.2"),
            critical,
            target_flag: target.map(|c| Flag { code: c.into(), computed: true }),
            ..Default::default()
        }
    }

    #[test]
    fn a_value_in_its_target_says_so_and_keeps_the_laboratorys_judgement_beside() {
        let p = inr("2.4", "H", Some("N"), None);
        assert_eq!(judged_label(&p, Lang::Fr), "◎ dans la cible");
        assert_eq!(judged_label(&p, Lang::En), "◎ in target");
        assert_eq!(laboratory_judgement(&p, 1, Lang::Fr).unwrap(), "Plage du laboratoire : 0,8 – 1,2 (↑ élevé)");
        assert_eq!(laboratory_judgement(&p, 1, Lang::En).unwrap(), "Laboratory's range: 0.8 – 1.2 (↑ high)");
    }

    #[test]
    fn out_of_target_and_critical_are_said_in_words() {
        assert_eq!(judged_label(&inr("3.6", "H", Some("H"), None), Lang::Fr), "↑ élevé par rapport à la cible");
        assert_eq!(
            judged_label(&inr("6.1", "HH", Some("H"), Some(Critical::High)), Lang::En),
            "‼ critical high value · ↑ high against the target"
        );
        let plain = inr("1.0", "N", None, None);
        assert_eq!(judged_label(&plain, Lang::Fr), "normal");
        assert_eq!(laboratory_judgement(&plain, 1, Lang::Fr), None, "no target: the flag is the laboratory's");
    }
}
