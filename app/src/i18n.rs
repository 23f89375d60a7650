//! Every string the interface shows, in French (the default) and English.
//!
//! Messages are an enum and translations a `match`: a message without both translations does not
//! compile, so the interface can never show a mixed language.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

/// Name of the cookie that remembers the chosen language.
pub const LANG_COOKIE: &str = "bioviewer_lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// Reads the language from a `Cookie` header value.
    pub fn from_cookie_header(header: &str) -> Option<Lang> {
        header.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name.trim() == LANG_COOKIE).then(|| Lang::from_code(value)).flatten()
        })
    }

    /// Formats a number with this language's decimal separator.
    pub fn decimal(self, formatted: &str) -> String {
        match self {
            Lang::Fr => formatted.replace('.', ","),
            Lang::En => formatted.to_string(),
        }
    }
}

macro_rules! messages {
    ($($key:ident => $fr:expr, $en:expr;)*) => {
        /// A user-visible message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Msg { $($key),* }

        impl Msg {
            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((Msg::$key, Lang::Fr) => $fr, (Msg::$key, Lang::En) => $en,)*
                }
            }

            /// Every message, for tests that check translations.
            pub const ALL: &'static [Msg] = &[$(Msg::$key),*];
        }
    };
}

messages! {
    AppName => "Bioviewer", "Bioviewer";
    Tagline => "Résultats de biologie, tous laboratoires", "Laboratory results, every laboratory";
    SkipToContent => "Aller au contenu", "Skip to content";
    LanguageLabel => "Langue", "Language";
    SwitchToFrench => "Afficher en français", "Show in French";
    SwitchToEnglish => "Afficher en anglais", "Show in English";
    Patients => "Patients", "Patients";
    PatientsIntro => "Patients dont des comptes rendus ont été importés.", "Patients whose reports have been imported.";
    NoPatients => "Aucun patient pour l'instant : importez des comptes rendus (bioviewer import).", "No patients yet: import reports (bioviewer import).";
    Name => "Nom", "Name";
    BirthDate => "Date de naissance", "Date of birth";
    Sex => "Sexe", "Sex";
    SexFemale => "Féminin", "Female";
    SexMale => "Masculin", "Male";
    SexUnknown => "Indéterminé", "Undetermined";
    Ins => "INS", "INS";
    InsTest => "INS de test", "test INS";
    DocumentCount => "Documents", "Documents";
    Documents => "Documents", "Documents";
    DocumentsIntro => "Comptes rendus reçus pour ce patient, du plus récent au plus ancien.", "Reports received for this patient, newest first.";
    NoDocuments => "Aucun document.", "No documents.";
    Filter => "Filtrer", "Filter";
    FilterPlaceholder => "Laboratoire, titre…", "Laboratory, title…";
    Shown => "affichés", "shown";
    Title => "Titre", "Title";
    Laboratory => "Laboratoire", "Laboratory";
    ReportDate => "Date du compte rendu", "Report date";
    Version => "Version", "Version";
    Kind => "Type", "Type";
    Status => "Statut", "Status";
    Imported => "Importé le", "Imported";
    Size => "Taille", "Size";
    KindStructured => "CR-BIO structuré", "Structured CR-BIO";
    KindAutoPresentable => "CR-BIO auto-présentable", "Self-presenting CR-BIO";
    KindPdfOnly => "CR-BIO PDF seul", "PDF-only CR-BIO";
    KindOtherCda => "Autre document CDA", "Other CDA document";
    KindNotCda => "Pas un document CDA", "Not a CDA document";
    KindUnreadable => "Illisible", "Unreadable";
    StatusFinal => "Définitif", "Final";
    StatusPartial => "Partiel", "Partial";
    StatusUnknown => "Non précisé", "Not stated";
    Unknown => "Inconnu", "Unknown";
    BackToPatients => "← Tous les patients", "← All patients";
    PatientNotFound => "Patient introuvable.", "Patient not found.";
    PageNotFound => "Page introuvable.", "Page not found.";
    Loading => "Chargement…", "Loading…";
    ErrorLoading => "Le chargement a échoué. Réessayez ; si cela persiste, contactez l'administrateur.", "Loading failed. Try again; if it persists, contact the administrator.";
    ProblemLabel => "Problème", "Problem";
}

/// The language signal shared by the whole app.
#[derive(Clone, Copy)]
pub struct LangContext(pub RwSignal<Lang>);

/// The language the page was requested in: the cookie on the server; on the client, the `lang`
/// attribute the server wrote on `<html>` (so hydration starts from the same state).
pub fn request_lang() -> Lang {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .and_then(|parts| {
                parts.headers.get_all(http::header::COOKIE).iter().find_map(|v| Lang::from_cookie_header(v.to_str().ok()?))
            })
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        document_lang().unwrap_or_default()
    }
}

#[cfg(not(feature = "ssr"))]
fn document_lang() -> Option<Lang> {
    #[cfg(target_arch = "wasm32")]
    {
        let element = document().document_element()?;
        Lang::from_code(&element.get_attribute("lang")?)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        None
    }
}

pub fn provide_lang() {
    let lang = RwSignal::new(request_lang());
    provide_context(LangContext(lang));
    // Keep <html lang> true for screen readers after a switch in the browser.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let code = lang.get().code();
        if let Some(element) = document().document_element() {
            let _ = element.set_attribute("lang", code);
        }
    });
}

pub fn use_lang() -> RwSignal<Lang> {
    use_context::<LangContext>().map(|c| c.0).unwrap_or_else(|| RwSignal::new(Lang::default()))
}

/// A reactive translated string.
pub fn tr(msg: Msg) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
    let lang = use_lang();
    move || msg.text(lang.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_translated_differently_or_on_purpose() {
        for msg in Msg::ALL {
            let (fr, en) = (msg.text(Lang::Fr), msg.text(Lang::En));
            assert!(!fr.is_empty() && !en.is_empty(), "{msg:?}");
        }
    }

    #[test]
    fn reads_language_cookie() {
        assert_eq!(Lang::from_cookie_header("a=b; bioviewer_lang=en; c=d"), Some(Lang::En));
        assert_eq!(Lang::from_cookie_header("bioviewer_lang=de"), None);
        assert_eq!(Lang::from_cookie_header(""), None);
    }

    #[test]
    fn french_uses_a_decimal_comma() {
        assert_eq!(Lang::Fr.decimal("4.25"), "4,25");
        assert_eq!(Lang::En.decimal("4.25"), "4.25");
    }
}
