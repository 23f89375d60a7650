//! Results that are not numbers: what a coded or text result says (positive, negative, an
//! abnormal finding), so that a positive rapid test or a cytology finding is flagged instead of
//! sitting unflagged among "other results".
//!
//! Rules (each has a test below):
//! - the laboratory's own interpretation code always wins (the caller uses it first);
//! - a coded value is read from its code (SNOMED CT "positive", "negative", "detected", "not
//!   detected"...), then from its display name and the narrative text it points to; a text
//!   value from its words (French and English);
//! - negative words are read first ("non détecté" is not "détecté");
//! - a positive result is flagged `POS` when the test's normal is negative: presence tests
//!   (antigens, nucleic acids, rapid tests...). Antibody tests (an IgG or antibody, often a sign
//!   of immunity) are flagged only when their reference says negative;
//! - a pathology or cytology finding (carcinoma, dysplasia, high-grade lesion, atypical cells...)
//!   is flagged `A` (abnormal);
//! - when the coded value and the narrative it points to say opposite things (a positive code
//!   beside a "négatif" text, or the reverse), the result is flagged as if positive and the
//!   narrative's words are kept beside it: never silently pick the reassuring one.

use crate::cda::{Code, Observation, Value, oid};

/// What a qualitative result says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    Negative,
    Positive,
    /// An abnormal finding that is not a plain "positive" (a malignant cytology...).
    Abnormal,
}

impl Polarity {
    fn is_alarming(self) -> bool {
        self != Polarity::Negative
    }
}

/// SNOMED CT qualifiers laboratories use for qualitative results.
const SNOMED: &[(&str, Polarity)] = &[
    ("10828004", Polarity::Positive),       // Positive
    ("260385009", Polarity::Negative),      // Negative
    ("260373001", Polarity::Positive),      // Detected
    ("260415000", Polarity::Negative),      // Not detected
    ("52101004", Polarity::Positive),       // Present
    ("2667000", Polarity::Negative),        // Absent
    ("11214006", Polarity::Positive),       // Reactive
    ("131194007", Polarity::Negative),      // Non-reactive
    ("1269497006", Polarity::Positive),     // High-risk HPV DNA detected (ANS value sets)
    ("77851000146104", Polarity::Negative), // High-risk HPV not detected (ANS value sets)
];

/// Lower case, without French accents, hyphens as spaces (`Non-détecté` → `non detecte`).
fn fold(s: &str) -> String {
    fold_accents(s).replace(['-', '_'], " ")
}

/// Lower case without French accents (`Détecté` → `detecte`):
/// what searches and word matching compare, in the core and in the interface alike.
pub fn fold_accents(s: &str) -> String {
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

const NEGATIVE_WORDS: &[&str] = &[
    "non detecte",
    "not detected",
    "non detectable",
    "indetectable",
    "undetectable",
    "non reactif",
    "non reactive",
    "nonreactive",
    "negatif",
    "negative",
    "absence",
    "absent",
    "nilm",
];
const ABNORMAL_WORDS: &[&str] = &[
    "carcinome",
    "carcinoma",
    "adenocarcinome",
    "adenocarcinoma",
    "malin",
    "malig",
    "dysplasi",
    "haut grade",
    "high grade",
    "bas grade",
    "low grade",
    "hsil",
    "lsil",
    "asc us",
    "asc h",
    "agc",
    "atypi",
];
const POSITIVE_WORDS: &[&str] = &["positif", "positive", "detecte", "detected", "presence", "present", "reactif", "reactive"];

/// What words say, if anything: negative words first, then abnormal findings, then positive.
pub fn polarity_of_text(text: &str) -> Option<Polarity> {
    let folded = fold(text);
    let words = |list: &[&str]| list.iter().any(|w| contains_word(&folded, w));
    if words(NEGATIVE_WORDS) {
        Some(Polarity::Negative)
    } else if words(ABNORMAL_WORDS) {
        Some(Polarity::Abnormal)
    } else if words(POSITIVE_WORDS) {
        Some(Polarity::Positive)
    } else {
        None
    }
}

/// `needle` in `haystack` starting at a word boundary (`malin` in "maligne", not in "tramaline";
/// `agc` not inside another word).
fn contains_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(i, _)| i == 0 || !haystack[..i].chars().next_back().is_some_and(char::is_alphanumeric))
}

fn polarity_of_code(code: &Code) -> Option<Polarity> {
    if code.system.as_deref() != Some(oid::SNOMED_CT) {
        return None;
    }
    let c = code.code.as_deref()?;
    SNOMED.iter().find(|(k, _)| *k == c).map(|(_, p)| *p)
}

/// What a qualitative result reads as: the polarity it says, and the narrative's own words when
/// they contradict the coded value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reading {
    /// `POS` (positive where negative is normal), `A` (an abnormal finding), `NEG` (negative
    /// where negative is normal), or nothing.
    pub flag: Option<&'static str>,
    /// The narrative's text when it says the opposite of the coded value.
    pub discordant_text: Option<String>,
}

/// Whether a negative result is this test's normal: not an antibody (immunity) test, unless its
/// reference says negative.
fn normal_is_negative(o: &Observation) -> bool {
    if o.reference_ranges.iter().filter_map(|r| r.text.as_deref()).any(|t| polarity_of_text(t) == Some(Polarity::Negative)) {
        return true;
    }
    let names = [o.code.display.as_deref(), o.code.original_text.as_deref()];
    let antibody = names
        .into_iter()
        .flatten()
        .map(|n| format!(" {} ", fold(n)))
        .any(|n| [" ac ", "anticorps", "antibod", "igg", " ab "].iter().any(|w| n.contains(w)));
    !antibody
}

/// Reads a coded or text result. Numbers are not read here (their range decides).
pub fn read(o: &Observation) -> Reading {
    let (primary, narrative) = match &o.value {
        Some(Value::Coded(code)) => {
            let from_code = polarity_of_code(code).or_else(|| code.display.as_deref().and_then(polarity_of_text));
            let from_text = code.original_text.as_deref().and_then(polarity_of_text);
            (
                from_code.or(from_text),
                from_text.filter(|_| from_code.is_some()).map(|p| (p, code.original_text.clone().unwrap_or_default())),
            )
        }
        Some(Value::Text { text }) => (polarity_of_text(text), None),
        _ => return Reading::default(),
    };
    let Some(primary) = primary else { return Reading::default() };
    let discordant = narrative.filter(|(p, _)| p.is_alarming() != primary.is_alarming());
    let said = if discordant.is_some() { Polarity::Positive.max_with(primary) } else { primary };
    let flag = match said {
        Polarity::Abnormal => Some("A"),
        Polarity::Positive if discordant.is_some() || normal_is_negative(o) => Some("POS"),
        Polarity::Negative if normal_is_negative(o) => Some("NEG"),
        _ => None,
    };
    Reading { flag, discordant_text: discordant.map(|(_, text)| text) }
}

impl Polarity {
    /// The more alarming of two readings.
    fn max_with(self, other: Polarity) -> Polarity {
        match (self, other) {
            (Polarity::Abnormal, _) | (_, Polarity::Abnormal) => Polarity::Abnormal,
            (Polarity::Positive, _) | (_, Polarity::Positive) => Polarity::Positive,
            _ => Polarity::Negative,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cda::{ReferenceRange, ResultStatus};

    fn observation(name: &str, value: Value) -> Observation {
        Observation {
            index: 0,
            previous_of: None,
            chapter: None,
            sub_chapter: None,
            battery: None,
            isolate: None,
            code: Code { code: Some("x".into()), display: Some(name.into()), ..Code::default() },
            status: ResultStatus::Completed,
            value: Some(value),
            interpretation: Vec::new(),
            method: None,
            reference_ranges: Vec::new(),
            effective_time: None,
            collection_time: None,
            collection_time_source: None,
            performer: None,
            performer_overridden: false,
            specimen: None,
            comments: Vec::new(),
        }
    }

    fn coded(code: &str, display: &str, narrative: Option<&str>) -> Value {
        Value::Coded(Code {
            code: Some(code.into()),
            system: Some(oid::SNOMED_CT.into()),
            display: Some(display.into()),
            original_text: narrative.map(str::to_string),
            ..Code::default()
        })
    }

    fn text(t: &str) -> Value {
        Value::Text { text: t.into() }
    }

    #[test]
    fn negative_words_are_read_before_positive_ones() {
        assert_eq!(polarity_of_text("HPV-HR non détecté"), Some(Polarity::Negative));
        assert_eq!(polarity_of_text("ADN d'HPV-HR détecté"), Some(Polarity::Positive));
        assert_eq!(polarity_of_text("négatif pour une lésion intra-épithéliale ou maligne"), Some(Polarity::Negative));
        assert_eq!(polarity_of_text("adénocarcinome SAP"), Some(Polarity::Abnormal));
        assert_eq!(polarity_of_text("Positive"), Some(Polarity::Positive));
        assert_eq!(polarity_of_text("paille"), None);
        assert_eq!(polarity_of_text("clair"), None);
    }

    #[test]
    fn a_positive_antigen_test_is_flagged_and_a_negative_one_is_normal() {
        let name = "Influenza virus B Ag [Présence/Seuil] Voies respiratoires supérieures";
        assert_eq!(read(&observation(name, coded("10828004", "positif", Some("positif")))).flag, Some("POS"));
        assert_eq!(read(&observation(name, coded("260385009", "négatif", Some("négatif")))).flag, Some("NEG"));
        assert_eq!(read(&observation(name, text("POSITIF"))).flag, Some("POS"));
    }

    #[test]
    fn a_code_and_a_narrative_that_disagree_are_flagged_with_the_narrative_kept() {
        let name = "Influenza virus B Ag [Présence/Seuil]";
        let reading = read(&observation(name, coded("260385009", "négatif", Some("positif"))));
        assert_eq!(reading.flag, Some("POS"), "never the reassuring one of two contradicting statements");
        assert_eq!(reading.discordant_text.as_deref(), Some("positif"));
        let reading = read(&observation(name, coded("10828004", "positif", Some("négatif"))));
        assert_eq!(reading.flag, Some("POS"));
        assert_eq!(reading.discordant_text.as_deref(), Some("négatif"));
        // Agreeing words are not a discordance.
        assert_eq!(read(&observation(name, coded("10828004", "positif", Some("Positif")))).discordant_text, None);
    }

    #[test]
    fn an_antibody_is_flagged_only_against_a_negative_reference() {
        let name = "Virus rubéole IgG Ac [Présence]";
        assert_eq!(read(&observation(name, text("positif"))).flag, None, "immunity is not an abnormal result");
        let mut o = observation(name, text("positif"));
        o.reference_ranges.push(ReferenceRange { text: Some("négatif".into()), ..ReferenceRange::default() });
        assert_eq!(read(&o).flag, Some("POS"));
    }

    #[test]
    fn a_cytology_finding_is_abnormal() {
        let name = "Observation microscopique:Identification:Ponctuel:Col de l'utérus";
        assert_eq!(read(&observation(name, coded("MED-1194", "adénocarcinome SAP", Some("adénocarcinome SAP")))).flag, Some("A"));
        assert_eq!(read(&observation(name, text("négatif pour une lésion intra-épithéliale ou maligne"))).flag, Some("NEG"));
    }

    #[test]
    fn numbers_and_unknown_words_are_not_read() {
        assert_eq!(read(&observation("Couleur", text("paille"))), Reading::default());
        let q = Value::Real { value: crate::cda::Decimal::parse("1.2").unwrap() };
        assert_eq!(read(&observation("INR", q)), Reading::default());
    }
}
