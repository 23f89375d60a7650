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
            <a class="brand" href="/">
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
/// `1979-03-28 07:35` in English. Time zones are shown as the laboratory gave them.
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

/// Lower-cases and strips French accents, for accent-insensitive search.
pub fn fold_for_search(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'ç' => 'c',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ÿ' => 'y',
            'œ' => 'o',
            other => other,
        })
        .collect()
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
