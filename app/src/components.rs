//! Pieces shared by several pages.

use leptos::prelude::*;

use crate::api::SetLanguage;
use crate::i18n::{Lang, Msg, tr, use_lang};
use crate::model::{Point, PointStatus};

/// The application header: product name and the language switch.
#[component]
pub fn Header() -> impl IntoView {
    let lang = use_lang();
    let remember = ServerAction::<SetLanguage>::new();
    let switch_to = move |to: Lang| {
        if lang.get_untracked() != to {
            lang.set(to);
            remember.dispatch(SetLanguage { lang: to });
        }
    };
    view! {
        <a class="skip-link" href="#main">{tr(Msg::SkipToContent)}</a>
        <header class="app-header">
            // A page load, not an in-app navigation: the server sends a patient to her own
            // summary, anyone else to the list of patients.
            <a class="brand" href="/" rel="external">
                <span class="brand-name">{tr(Msg::AppName)}</span>
                <span class="tagline">{tr(Msg::Tagline)}</span>
            </a>
            <crate::pages::UserMenu/>
            <div class="lang-switch" role="group" aria-label=tr(Msg::LanguageLabel)>
                <button
                    type="button"
                    lang="fr"
                    data-testid="lang-fr"
                    aria-pressed=move || (lang.get() == Lang::Fr).to_string()
                    title=tr(Msg::SwitchToFrench)
                    on:click=move |_| switch_to(Lang::Fr)
                >
                    "FR"
                </button>
                <button
                    type="button"
                    lang="en"
                    data-testid="lang-en"
                    aria-pressed=move || (lang.get() == Lang::En).to_string()
                    title=tr(Msg::SwitchToEnglish)
                    on:click=move |_| switch_to(Lang::En)
                >
                    "EN"
                </button>
            </div>
        </header>
    }
}

/// Whose record this is, on top of every page of results: a clinician must never wonder.
#[component]
pub fn PatientBanner(identity: Option<crate::model::PatientIdentity>) -> impl IntoView {
    let lang = use_lang();
    identity.map(|p| {
        let name = format!("{} {}", p.family_name.clone().unwrap_or_default(), p.given_name.clone().unwrap_or_default());
        let birth = p.birth_date.map(|b| b.to_string());
        let has_ins = bioviewer_core::cda::IdentifierKind::of(&p.ins_root, &p.ins) == bioviewer_core::cda::IdentifierKind::Ins;
        view! {
            <p class="patient-banner" data-testid="patient-banner">
                <strong>{name.trim().to_string()}</strong>
                {birth.map(|b| view! { " · " {tr(Msg::BirthDate)} " " {move || format_datetime(lang.get(), &b)} })}
                " · " {tr(if has_ins { Msg::Ins } else { Msg::PatientKey })} " " <span class="mono">{p.ins.clone()}</span>
                {(!has_ins).then(|| view! { " " <span class="badge badge-warning">{tr(Msg::NoIns)}</span> })}
            </p>
        }
    })
}

/// Why a document could not be read, in the reader's language, from its code
/// (`kind:line:column`); a document stored before codes existed gets the general sentence.
pub fn problem_text(lang: Lang, code: Option<&str>) -> String {
    let mut parts = code.unwrap_or_default().split(':');
    let msg = match parts.next().unwrap_or_default() {
        "empty" => Msg::ProblemEmpty,
        "too_large" | "too_deep" | "too_many_nodes" | "too_many_attributes" => Msg::ProblemTooBig,
        "doctype_refused" => Msg::ProblemDoctype,
        "undefined_entity" => Msg::ProblemEntity,
        "unsupported_encoding" | "invalid_utf8" => Msg::ProblemEncoding,
        "truncated" => Msg::ProblemTruncated,
        "no_root" | "trailing_content" | "malformed" => Msg::ProblemMalformed,
        _ => Msg::ProblemUnreadable,
    };
    let (line, column) = (parts.next().and_then(|l| l.parse::<u32>().ok()), parts.next().and_then(|c| c.parse::<u32>().ok()));
    match (line, column) {
        (Some(line), Some(column)) if line > 0 => {
            format!("{} ({} {line}, {} {column})", msg.text(lang), Msg::Line.text(lang), Msg::Column.text(lang))
        }
        _ => msg.text(lang).to_string(),
    }
}

/// A result's value as every page writes it: the comparator, then the number with the
/// language's decimal mark; a text result verbatim; "not performed" when the laboratory said so.
pub fn point_text(point: &Point, lang: Lang) -> String {
    if point.status == PointStatus::NotPerformed {
        return Msg::NotPerformed.text(lang).to_string();
    }
    match (&point.display, &point.text) {
        (Some(d), _) => format!("{}{}", point.comparator.map(|c| c.symbol()).unwrap_or(""), lang.decimal(d)),
        (None, Some(t)) => t.clone(),
        (None, None) => String::new(),
    }
}

/// Formats an ISO date or date-time for display: `28/03/1979 07:35` in French,
/// `1979-03-28 07:35` in English: the wall clock as written (the server writes times in the
/// clinician's zone; [`format_instant`] names the zone).
pub fn format_datetime(lang: Lang, iso: &str) -> String {
    let (date, time) = iso.split_once('T').unwrap_or((iso, ""));
    let clock: String = time.chars().take(5).collect();
    let date = match (lang, date.split('-').collect::<Vec<_>>().as_slice()) {
        (Lang::Fr, [y, m, d]) => format!("{d}/{m}/{y}"),
        (Lang::Fr, [y, m]) => format!("{m}/{y}"),
        _ => date.to_string(),
    };
    if clock.is_empty() { date } else { format!("{date} {clock}") }
}

/// An instant the server wrote in the clinician's time zone (RFC 9557:
/// `2026-03-29T03:30:00+02:00[Europe/Paris]`), for people: the local date and time, and the
/// zone named (`29/03/2026 03:30 (heure de Paris)`), never a bare clock. A time without a zone
/// name is shown as written.
pub fn format_instant(lang: Lang, instant: &str) -> String {
    let (time, zone) = split_zone(instant);
    let shown = format_datetime(lang, time);
    match zone {
        Some(zone) if !shown.is_empty() => format!("{shown} ({})", zone_label(lang, zone)),
        _ => shown,
    }
}

/// The local time and the zone's name of an RFC 9557 instant.
pub fn split_zone(instant: &str) -> (&str, Option<&str>) {
    match instant.strip_suffix(']').and_then(|s| s.rsplit_once('[')) {
        Some((time, zone)) => (time, Some(zone)),
        None => (instant, None),
    }
}

/// A time zone as people say it: `heure de Paris`, `Paris time`, `UTC`.
pub fn zone_label(lang: Lang, zone: &str) -> String {
    if matches!(zone, "UTC" | "Etc/UTC" | "Etc/GMT" | "GMT" | "Etc/Universal" | "Zulu") {
        return "UTC".to_string();
    }
    let city = zone.rsplit('/').next().unwrap_or(zone).replace('_', " ");
    Msg::ZoneTime.text(lang).replace("{zone}", &city)
}

/// A date typed in the interface's format (`28/03/1979` in French, `1979-03-28` in English;
/// ISO is read in both) as an ISO date; `Some("")` for an empty field, `None` for what is not a
/// real date.
pub fn parse_date(lang: Lang, typed: &str) -> Option<String> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Some(String::new());
    }
    let parts: Vec<&str> = typed.split(['/', '-', '.']).collect();
    let number = |s: &str| s.parse::<u32>().ok().filter(|_| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()));
    let (y, m, d) = match parts.as_slice() {
        [y, m, d] if y.len() == 4 => (number(y)?, number(m)?, number(d)?),
        [d, m, y] if y.len() == 4 && lang == Lang::Fr => (number(y)?, number(m)?, number(d)?),
        _ => return None,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1000..=9999).contains(&y).then_some(()).filter(|_| (1..=days).contains(&d)).map(|_| format!("{y:04}-{m:02}-{d:02}"))
}

/// A date field in the interface's format: a browser's own date input writes dates in the
/// browser's language, not the page's. Holds an ISO date (empty when cleared); what is not a
/// date is marked invalid, said, and changes nothing.
/// (Plain shared closures rather than `Signal` and `Callback`, which the bundle would otherwise
/// carry for this field alone.)
#[component]
pub fn DateField(
    id: &'static str,
    testid: &'static str,
    value: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
    on_change: std::sync::Arc<dyn Fn(String) + Send + Sync>,
) -> impl IntoView {
    let lang = use_lang();
    let invalid = RwSignal::new(false);
    let error_id = format!("{id}-error");
    view! {
        <input id=id type="text" class="date-field" inputmode="numeric" autocomplete="off" size="10" data-testid=testid
            placeholder=move || Msg::DateFormatHint.text(lang.get())
            aria-invalid=move || invalid.get().to_string()
            aria-describedby=error_id.clone()
            prop:value=move || { let v = value(); if v.is_empty() { v } else { format_datetime(lang.get(), &v) } }
            on:change=move |ev| match parse_date(lang.get_untracked(), &event_target_value(&ev)) {
                Some(iso) => { invalid.set(false); on_change(iso) }
                None => invalid.set(true),
            }/>
        <span id=error_id class="field-error" role="status">{move || invalid.get().then(|| Msg::DateInvalid.text(lang.get()))}</span>
    }
}

/// A byte count for people: `1,2 Mo` / `1.2 MB`.
pub fn format_size(lang: Lang, bytes: u64) -> String {
    let (value, unit_fr, unit_en) =
        if bytes >= 1024 * 1024 { (bytes as f64 / (1024.0 * 1024.0), "Mo", "MB") } else { (bytes as f64 / 1024.0, "ko", "KB") };
    let number = lang.decimal(&format!("{value:.1}"));
    match lang {
        Lang::Fr => format!("{number} {unit_fr}"),
        Lang::En => format!("{number} {unit_en}"),
    }
}

/// Lower-cases and strips French accents, for accent-insensitive search (the core's folding).
pub fn fold_for_search(s: &str) -> String {
    bioviewer_core::qualitative::fold_accents(s)
}

/// How a value was put in the display unit, said to a reader.
pub fn rule_text(rule: &bioviewer_core::units::Rule, lang: Lang) -> &'static str {
    use bioviewer_core::units::Rule;
    let msg = match rule {
        Rule::Identity => Msg::RuleIdentity,
        Rule::Alias => Msg::RuleAlias,
        Rule::DecimalShift => Msg::RuleDecimalShift,
        Rule::Factor => Msg::RuleFactor,
        Rule::MolarMass => Msg::RuleMolarMass,
        Rule::HbA1cMasterEquation => Msg::RuleHbA1c,
        Rule::MonovalentEquivalent => Msg::RuleMonovalent,
        Rule::EnzymeInternationalUnit => Msg::RuleEnzymeIu,
    };
    msg.text(lang)
}

/// Why a value stays in the laboratory's unit, said to a reader (the units are quoted as
/// written: they are data, not words).
pub fn not_converted_text(reason: &bioviewer_core::units::UnitError, lang: Lang) -> String {
    use bioviewer_core::units::UnitError;
    let quote = |s: &str| match lang {
        Lang::Fr => format!("« {s} »"),
        Lang::En => format!("\u{201c}{s}\u{201d}"),
    };
    match reason {
        UnitError::Unknown(unit) => format!("{} {}", Msg::UnitUnknown.text(lang), quote(unit)),
        UnitError::Missing => Msg::UnitMissing.text(lang).to_string(),
        UnitError::Incompatible { from, to } => format!("{} ({} → {})", Msg::UnitIncompatible.text(lang), quote(from), quote(to)),
        UnitError::NeedsMolarMass { from, to } => format!("{} ({} → {})", Msg::UnitNeedsMolarMass.text(lang), quote(from), quote(to)),
        UnitError::NotRatioScale(unit) => format!("{} {}", Msg::UnitNotRatio.text(lang), quote(unit)),
        UnitError::BadNumber(number) => format!("{} {}", Msg::UnitBadNumber.text(lang), quote(number)),
    }
}

/// Which report a value came from, as a reader names it: laboratory and report date.
pub struct DocumentLabels(std::collections::HashMap<String, (Option<String>, Option<String>, bool)>);

impl DocumentLabels {
    pub fn of(history: &crate::model::History) -> DocumentLabels {
        DocumentLabels(
            history
                .documents
                .iter()
                .map(|d| {
                    let uploaded = d.provenance == bioviewer_core::normalise::Provenance::Upload;
                    (d.id.clone(), (d.laboratory.clone(), d.effective_time.map(|t| t.date_string()), uploaded))
                })
                .collect(),
        )
    }

    /// The labels of the documents a table slice's results come from.
    pub fn of_entries(entries: &[(String, Option<String>, Option<String>, bool)]) -> DocumentLabels {
        DocumentLabels(
            entries.iter().map(|(id, laboratory, date, uploaded)| (id.clone(), (laboratory.clone(), date.clone(), *uploaded))).collect(),
        )
    }

    /// Whether a user uploaded this document (its values are marked wherever they show).
    pub fn uploaded(&self, document: &str) -> bool {
        self.0.get(document).is_some_and(|(_, _, uploaded)| *uploaded)
    }

    /// "report of <date> (<laboratory>)", and "uploaded" when a user uploaded it: a value from
    /// an upload never passes for one a laboratory sent through the DMP.
    pub fn label(&self, document: &str, lang: Lang) -> String {
        let (laboratory, date, uploaded) = self.0.get(document).cloned().unwrap_or_default();
        let mut label = format!("{} {}", Msg::ReportOf.text(lang), date.map(|d| format_datetime(lang, &d)).unwrap_or_else(|| "?".into()));
        if let Some(laboratory) = laboratory {
            label.push_str(&format!(" ({laboratory})"));
        }
        if uploaded {
            label.push_str(&format!(" — {}", Msg::UploadedMark.text(lang)));
        }
        label
    }
}

/// A flag's symbol (never colour alone), its CSS class and its name.
pub fn flag_symbol(code: &str) -> (&'static str, &'static str, Msg) {
    match code {
        "H" | "HU" => ("↑", "flag-high", Msg::High),
        "HH" => ("↑↑", "flag-high", Msg::High),
        "L" | "LU" => ("↓", "flag-low", Msg::Low),
        "LL" => ("↓↓", "flag-low", Msg::Low),
        "POS" => ("!", "flag-abnormal", Msg::PositiveFlag),
        "R" => ("!", "flag-abnormal", Msg::Resistant),
        "A" | "AA" => ("!", "flag-abnormal", Msg::Abnormal),
        _ => ("", "", Msg::Abnormal),
    }
}

/// A flag in words with its symbol (`↑ élevé`, `normal`); codes with no name stay as sent.
pub fn flag_label(code: &str, lang: Lang) -> String {
    match flag_symbol(code) {
        ("", _, _) if code == "N" => Msg::NormalFlag.text(lang).to_string(),
        ("", _, _) if code == "NEG" => Msg::NegativeFlag.text(lang).to_string(),
        ("", _, _) if code == "S" => Msg::Susceptible.text(lang).to_string(),
        ("", _, _) if code == "I" => Msg::Intermediate.text(lang).to_string(),
        ("", _, _) => code.to_string(),
        (symbol, _, msg) => format!("{symbol} {}", msg.text(lang)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_the_language() {
        assert_eq!(format_datetime(Lang::Fr, "2021-01-04T07:35:00+01:00"), "04/01/2021 07:35");
        assert_eq!(format_datetime(Lang::En, "2021-01-04T07:35:00+01:00"), "2021-01-04 07:35");
        assert_eq!(format_datetime(Lang::Fr, "1979-03-28"), "28/03/1979");
    }

    /// Times come from the server in the clinician's zone, and say which zone it is.
    #[test]
    fn instants_are_labelled_with_their_zone() {
        assert_eq!(format_instant(Lang::Fr, "2026-03-29T03:30:00+02:00[Europe/Paris]"), "29/03/2026 03:30 (heure de Paris)");
        assert_eq!(format_instant(Lang::En, "2026-10-25T02:30:00+01:00[Europe/Paris]"), "2026-10-25 02:30 (Paris time)");
        assert_eq!(format_instant(Lang::En, "2026-01-04T09:00:00-03:00[America/Cayenne]"), "2026-01-04 09:00 (Cayenne time)");
        assert_eq!(format_instant(Lang::Fr, "2026-01-04T12:00:00+00:00[UTC]"), "04/01/2026 12:00 (UTC)");
        assert_eq!(format_instant(Lang::Fr, ""), "");
    }

    #[test]
    fn dates_are_typed_in_the_interface_format() {
        assert_eq!(parse_date(Lang::Fr, "05/01/2024").as_deref(), Some("2024-01-05"));
        assert_eq!(parse_date(Lang::Fr, "5/1/2024").as_deref(), Some("2024-01-05"));
        assert_eq!(parse_date(Lang::Fr, "2024-01-05").as_deref(), Some("2024-01-05"));
        assert_eq!(parse_date(Lang::En, "2024-01-05").as_deref(), Some("2024-01-05"));
        assert_eq!(parse_date(Lang::En, "05/01/2024"), None, "day and month order is ambiguous in English");
        assert_eq!(parse_date(Lang::Fr, "29/02/2023"), None);
        assert_eq!(parse_date(Lang::Fr, "29/02/2024").as_deref(), Some("2024-02-29"));
        assert_eq!(parse_date(Lang::Fr, "31/04/2024"), None);
        assert_eq!(parse_date(Lang::Fr, "demain"), None);
        assert_eq!(parse_date(Lang::Fr, " ").as_deref(), Some(""));
    }

    #[test]
    fn sizes_use_the_local_decimal_mark() {
        assert_eq!(format_size(Lang::Fr, 1_572_864), "1,5 Mo");
        assert_eq!(format_size(Lang::En, 2048), "2.0 KB");
    }

    #[test]
    fn search_ignores_accents_and_case() {
        assert_eq!(fold_for_search("Glycémie À jeun"), "glycemie a jeun");
    }
}
