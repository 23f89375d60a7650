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

    /// A catalogue (UCUM) unit as readers of this language expect it printed (`µmol/L`,
    /// `10⁹/L`, `mUI/L` or `mIU/L`; nothing for ratios).
    pub fn unit(self, ucum: Option<&str>) -> String {
        bioviewer_core::units::display_unit(ucum.unwrap_or(""), self == Lang::Fr)
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
    NoPatients => "Aucun patient à afficher : aucune relation de soin en cours, et aucun compte rendu importé pour vous.", "No patient to show: no care relationship in force, and no report imported for you.";
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
    FilterPlaceholder => "Laboratoire, titre, analyse…", "Laboratory, title, test…";
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
    StateReplaced => "Remplacé", "Replaced";
    StateRejected => "Rejeté", "Rejected";
    StateUnreadable => "Illisible", "Unreadable";
    Unknown => "Inconnu", "Unknown";
    BackToPatients => "← Tous les patients", "← All patients";
    RecordNotFoundForPatient => "Dossier introuvable : ce lien ne mène pas à votre dossier.", "Record not found: this link does not lead to your record.";
    PatientNotFound => "Patient introuvable, ou vous n'avez pas de relation de soin avec ce patient. En situation d'urgence, utilisez l'accès « bris de glace » depuis la liste des patients.", "Patient not found, or you have no care relationship with this patient. In an emergency, use break-the-glass access from the patient list.";
    PatientsIntroProfessional => "Les patients avec qui vous avez une relation de soin (médecin traitant, séjour hospitalier, prescription) ou un accès en urgence en cours.", "Patients you have a care relationship with (attending doctor, hospital stay, prescription) or an emergency access in progress.";
    PatientsIntroPatient => "Votre dossier de résultats de biologie.", "Your laboratory results record.";
    AdminSeesNoResults => "Un administrateur gère les comptes et les relations de soin ; il ne voit aucun résultat.", "An administrator manages accounts and care relationships and sees no results.";
    SignIn => "Connexion", "Sign in";
    SignInIntro => "Accès réservé aux professionnels de santé et aux patients titulaires d'un compte.", "For healthcare professionals and patients with an account.";
    Login => "Identifiant", "Login";
    Password => "Mot de passe", "Password";
    SignInButton => "Se connecter", "Sign in";
    SignOut => "Se déconnecter", "Sign out";
    SignInWithPsc => "Se connecter avec Pro Santé Connect", "Sign in with Pro Santé Connect";
    OrLocalAccount => "ou avec un compte local :", "or with a local account:";
    SignInOidcFailed => "La connexion par Pro Santé Connect n'a pas abouti. Réessayez.", "Signing in with Pro Santé Connect failed. Try again.";
    SignInInvalid => "Identifiant ou mot de passe incorrect.", "Wrong login or password.";
    SignInRateLimited => "Trop de tentatives échouées. Réessayez dans quelques minutes.", "Too many failed attempts. Try again in a few minutes.";
    SignedOut => "Vous êtes déconnecté.", "You are signed out.";
    SessionExpired => "Votre session a expiré : reconnectez-vous.", "Your session has expired: sign in again.";
    SignedInAs => "Connecté :", "Signed in:";
    BreakGlass => "Accès en urgence (bris de glace)", "Emergency access (break the glass)";
    BreakGlassIntro => "Sans relation de soin enregistrée, vous pouvez ouvrir le dossier d'un patient en cas d'urgence. Le motif, votre identité et l'heure sont enregistrés et le patient les verra.", "Without a recorded care relationship you may open a patient's record in an emergency. The reason, your identity and the time are recorded and the patient will see them.";
    BreakGlassReason => "Motif (au moins 15 caractères)", "Reason (at least 15 characters)";
    BreakGlassDuration => "Durée", "Duration";
    OneHour => "1 heure", "1 hour";
    FourHours => "4 heures", "4 hours";
    TwelveHours => "12 heures", "12 hours";
    BreakGlassButton => "Ouvrir le dossier en urgence", "Open the record in an emergency";
    BreakGlassErrorReason => "Indiquez un motif d'au moins 15 caractères.", "State a reason of at least 15 characters.";
    BreakGlassErrorDuration => "Durée non autorisée.", "Duration not allowed.";
    BreakGlassErrorUnknown => "Aucun patient avec cet INS dans Bioviewer.", "No patient with this INS in Bioviewer.";
    BreakGlassBanner => "Accès en urgence (bris de glace) en cours jusqu'à", "Emergency (break-the-glass) access until";
    BreakGlassReasonLabel => "Motif :", "Reason:";
    BreakGlassEnd => "Terminer l'accès", "End the access";
    AccessLog => "Qui a consulté mon dossier", "Who accessed my record";
    AccessLogIntro => "Chaque consultation, export ou accès en urgence de votre dossier est enregistré. Voici la liste, du jour le plus récent au plus ancien.", "Every view, export or emergency access to your record is recorded. Here they are, most recent day first.";
    AccessLogEmpty => "Aucun accès enregistré.", "No access recorded.";
    AccessLogAccesses => "Accès à votre dossier", "Accesses to your record";
    AccessLogTotal => "accès enregistrés", "accesses recorded";
    AccessLogPages => "Pages du journal", "Log pages";
    PageWord => "Page", "Page";
    PatientListPages => "Pages de la liste des patients", "Patient list pages";
    PreviousPatients => "← Précédents", "← Previous";
    NextPatients => "Suivants →", "Next →";
    PatientsOf => "sur", "of";
    PatientsWord => "patients", "patients";
    PatientWord => "patient", "patient";
    NoPatientMatches => "Aucun patient ne correspond à cette recherche.", "No patient matches this search.";
    NewerPage => "Plus récents", "Newer";
    OlderPage => "Plus anciens", "Older";
    RefusedRequests => "Demandes refusées", "Refused requests";
    RefusedRequestsIntro => "Des personnes sans raison de voir votre dossier l'ont demandé : rien ne leur a été montré. Les demandes d'une même personne sont regroupées.", "People with no reason to see your record asked for it: nothing was shown to them. Requests by one person are grouped.";
    RefusalCount => "Combien", "How many";
    FirstTime => "La première fois", "First time";
    LastTime => "La dernière fois", "Last time";
    ModeThrottled => "Refusé (trop de demandes)", "Refused (too many requests)";
    Alarms => "Alarmes", "Alarms";
    AlarmsEmpty => "Aucune alarme.", "No alarm.";
    AlarmKind => "Alarme", "Alarm";
    AlarmAccount => "Compte", "Account";
    AlarmDetail => "Détail", "Detail";
    AlarmRefusals => "Demandes refusées répétées (compte bloqué un moment)", "Repeated refused requests (account blocked for a while)";
    AlarmBrokenChain => "Journal d'audit rompu au démarrage", "Audit trail broken at start";
    AlarmOther => "Autre alarme", "Other alarm";
    RefusalsIn => "refus en", "refusals in";
    Minutes => "minutes", "minutes";
    FirstBadRecord => "premier enregistrement en défaut :", "first bad record:";
    TooManyRequests => "Trop de demandes refusées : réessayez plus tard.", "Too many refused requests: try again later.";
    When => "Quand", "When";
    Who => "Qui", "Who";
    What => "Quoi", "What";
    Why => "À quel titre", "On what grounds";
    BreakGlassAccesses => "Accès en urgence et leurs motifs", "Emergency accesses and their reasons";
    Until => "jusqu'à", "until";
    ActionView => "Consultation", "Viewed";
    ActionViewPatient => "Consultation de la liste de vos comptes rendus", "Viewed the list of your reports";
    ActionViewHistory => "Consultation de vos résultats", "Viewed your results";
    ActionViewDocument => "Consultation d'un compte rendu", "Viewed a report";
    ActionViewAttachment => "Ouverture de la copie PDF d'un compte rendu", "Opened the PDF copy of a report";
    ActionViewChart => "Consultation de la courbe d'une analyse", "Viewed the chart of a test";
    ActionViewAccessLog => "Consultation de ce journal", "Viewed this log";
    ActionExportJson => "Export de vos résultats (fichier de données)", "Exported your results (data file)";
    ActionExportCsv => "Export de vos résultats (tableur)", "Exported your results (spreadsheet)";
    ActionExportFhir => "Export de vos résultats vers un logiciel de soins (FHIR)", "Exported your results to care software (FHIR)";
    ActionBreakGlassRefused => "Ouverture en urgence refusée", "Emergency opening refused";
    ZoneTime => "heure de {zone}", "{zone} time";
    AccessLogByDay => "Jour par jour, chaque personne et ce qu'elle a fait ({zone}).", "Day by day, each person and what they did ({zone}).";
    TimesAt => "à", "at";
    DateFormatHint => "jj/mm/aaaa", "yyyy-mm-dd";
    DateInvalid => "Date non reconnue : écrivez-la jj/mm/aaaa.", "Date not recognised: write it yyyy-mm-dd.";
    ActionExport => "Export", "Export";
    ActionBreakGlass => "Ouverture en urgence", "Emergency opening";
    ActionOther => "Autre", "Other";
    ModeAttendingGp => "Médecin traitant", "Attending doctor";
    ModeHospitalStay => "Séjour hospitalier", "Hospital stay";
    ModePrescriber => "Prescripteur d'un examen", "Prescribed a test";
    ModeBreakGlass => "Bris de glace (urgence)", "Break the glass (emergency)";
    ModeOwnRecord => "Vous-même", "Yourself";
    ModeDenied => "Refusé", "Refused";
    You => "Vous", "You";
    Administration => "Administration", "Administration";
    Accounts => "Comptes", "Accounts";
    CareRelationships => "Relations de soin en cours", "Current care relationships";
    Role => "Rôle", "Role";
    RoleProfessional => "Professionnel de santé", "Healthcare professional";
    RolePatient => "Patient", "Patient";
    RoleAdmin => "Administrateur", "Administrator";
    Profession => "Profession", "Profession";
    Structure => "Structure", "Organisation";
    NewAccount => "Nouveau compte", "New account";
    DisplayName => "Nom affiché", "Display name";
    Rpps => "Identifiant national (RPPS, racine^extension)", "National id (RPPS, root^extension)";
    PatientInsForAccount => "INS du patient (comptes patients)", "Patient's INS (patient accounts)";
    Create => "Créer", "Create";
    NewRelationship => "Nouvelle relation de soin", "New care relationship";
    RelationshipKind => "Nature", "Kind";
    KindAttendingGp => "Médecin traitant", "Attending doctor";
    KindHospitalStay => "Séjour hospitalier", "Hospital stay";
    DurationDays => "Durée en jours (vide : jusqu'à la fin)", "Duration in days (empty: until ended)";
    Record => "Enregistrer", "Record";
    End => "Terminer", "End";
    Since2 => "Depuis", "Since";
    Done => "Enregistré.", "Saved.";
    Professional => "Professionnel", "Professional";
    Patient => "Patient", "Patient";
    FlagColumn => "Interprétation", "Flag";
    AdminBadLogin => "Un identifiant compte de 1 à 64 lettres, chiffres, « . », « _ », « - » ou « @ ».", "A login is 1 to 64 letters, digits, '.', '_', '-' or '@'.";
    AdminNoName => "Indiquez le nom affiché.", "Give the display name.";
    AdminShortPassword => "Un mot de passe compte au moins 12 caractères (1024 octets au plus).", "A password has at least 12 characters (1024 bytes at most).";
    AdminNoPatientIns => "Un compte patient indique l'INS de son dossier.", "A patient account gives the INS of its record.";
    AdminLoginTaken => "Cet identifiant est déjà pris.", "This login is taken.";
    AdminOwnAccount => "Un administrateur ne peut pas désactiver son propre compte.", "An administrator cannot disable their own account.";
    AdminUnknownAccount => "Aucun compte avec cet identifiant.", "No account with this login.";
    AdminNotAProfessional => "Les relations de soin concernent les professionnels de santé.", "Care relationships are for healthcare professionals.";
    AdminBadDuration => "La durée va de 1 à 3650 jours.", "The duration is 1 to 3650 days.";
    AdminInvalid => "La demande n'est pas valide.", "The request is not valid.";
    ProblemEmpty => "Le fichier est vide.", "The file is empty.";
    ProblemTooBig => "Le document dépasse les limites de taille ou d'imbrication acceptées.", "The document exceeds the accepted size or nesting limits.";
    ProblemDoctype => "Le document contient une déclaration DOCTYPE, refusée par sécurité.", "The document contains a DOCTYPE declaration, refused for safety.";
    ProblemEntity => "Le document utilise une entité XML non définie.", "The document uses an undefined XML entity.";
    ProblemEncoding => "L'encodage des caractères du document n'est pas pris en charge ou est invalide.", "The document's character encoding is unsupported or invalid.";
    ProblemTruncated => "Le document est tronqué : il s'arrête avant sa fin.", "The document is truncated: it stops before its end.";
    ProblemMalformed => "Le document n'est pas un XML bien formé.", "The document is not well-formed XML.";
    ProblemUnreadable => "Le document n'a pas pu être lu.", "The document could not be read.";
    Line => "ligne", "line";
    Column => "colonne", "column";
    BreakGlassPurpose => "Cadre", "Setting";
    PurposeEmergency => "Urgence (bris de glace)", "Emergency (break the glass)";
    PurposeRegulation => "Régulation médicale (centre 15)", "Medical regulation (centre 15)";
    ModeRegulation => "Régulation médicale (centre 15)", "Medical regulation (centre 15)";
    ImportDocuments => "Importer des comptes rendus (fichiers CDA)", "Import reports (CDA files)";
    ImportIntro => "Les comptes rendus reçus hors du DMP. Chaque fichier est conservé tel quel, même illisible, avec la raison.", "Reports received outside the DMP. Every file is kept as it is, even unreadable, with the reason.";
    CdaFiles => "Fichiers", "Files";
    Import => "Importer", "Import";
    UploadFile => "Fichier", "File";
    UploadResult => "Résultat", "Outcome";
    UploadStored => "Enregistré.", "Stored.";
    UploadAlreadyPresent => "Déjà présent : rien de nouveau.", "Already present: nothing new.";
    UploadStoredNotCounted => "Conservé, mais écarté des résultats du patient :", "Kept, but left out of the patient's results:";
    UploadStoredWithProblem => "Conservé avec un problème, rattaché à aucun dossier :", "Kept with a problem, attached to no record:";
    UploadNoPatient => "le document ne nomme aucun patient.", "the document names no patient.";
    UploadNoIns => "le patient du document n'a pas d'INS.", "the document's patient has no INS.";
    UploadInvalidIns => "l'INS du patient est invalide.", "the patient's INS is invalid.";
    UploadFailed => "Non enregistré :", "Not stored:";
    UploadEmpty => "le fichier est vide.", "the file is empty.";
    UploadTooLarge => "le fichier est trop volumineux (32 Mo au plus par envoi).", "the file is too large (32 MB at most per upload).";
    UploadCutOff => "l'envoi s'est interrompu avant la fin ; renvoyez ce fichier et les suivants.", "the upload stopped before its end; send this file and the next ones again.";
    UploadTooManyFiles => "trop de fichiers dans un même envoi (200 au plus) ; renvoyez celui-ci.", "too many files in one upload (200 at most); send this one again.";
    UploadUnavailable => "le service n'a pas pu l'enregistrer ; réessayez.", "the service could not store it; try again.";
    UploadOutcomeGone => "Le résultat de cet envoi n'est plus disponible.", "The outcome of this upload is no longer available.";
    ActionImport => "Document ajouté au dossier", "Document added to the record";
    ActionBreakGlassEnd => "Fin de l'accès en urgence", "End of the emergency access";
    ActionAccountCreated => "Compte créé, ouvrant l'accès à votre dossier", "Account created, opening your record";
    ActionRecordsLinked => "Dossier lié à un autre dossier à votre nom", "Record linked to another record of yours";
    ActionRecordsUnlinked => "Lien entre deux dossiers retiré", "Link between two records removed";
    ActionDmpSync => "Lecture de votre DMP", "Your DMP read";
    ActionRelationshipAdded => "Relation de soin enregistrée", "Care relationship recorded";
    ActionRelationshipEnded => "Relation de soin terminée", "Care relationship ended";
    BreakGlassErrorInvalidIns => "INS mal saisi : sa clé (les deux derniers chiffres) ne correspond pas. Vérifiez-le.", "Mistyped INS: its key (the last two digits) does not match. Check it.";
    KdigoStage => "stade KDIGO", "KDIGO stage";
    ComputedFromCreatinine => "calculé (CKD-EPI 2021) d'après la créatinine du jour", "computed (CKD-EPI 2021) from the day's creatinine";
    LinkConfirmQuestion => "Lier ce dossier à celui-ci, comme les dossiers d'une même personne ?", "Link this record to this one, as one person's records?";
    LinkConfirm => "Confirmer le lien", "Confirm the link";
    Cancel => "Annuler", "Cancel";
    LinkNotOnePerson => "Lien impossible : ces deux dossiers ne peuvent pas être ceux d'une même personne (deux INS, ou date de naissance ou sexe différents).", "Cannot link: these two records cannot be one person's (two INS, or another birth date or sex).";
    DmpSyncRunning => "Synchronisation avec le DMP en cours ; les résultats déjà reçus sont affichés.", "Syncing with the DMP; the results already received are shown.";
    DmpNeedsProSanteConnect => "Le DMP n'est pas consulté pour une connexion par mot de passe : connectez-vous avec Pro Santé Connect pour synchroniser ce patient avec le DMP. Les résultats affichés sont ceux déjà reçus.", "The DMP is not read for a password sign-in: sign in with Pro Santé Connect to sync this patient with the DMP. The results shown are those already received.";
    DmpSyncDone => "DMP synchronisé.", "DMP synced.";
    DmpSyncFailed => "La synchronisation avec le DMP a échoué ; les résultats affichés sont ceux déjà reçus. Nouvel essai à la prochaine ouverture.", "Syncing with the DMP failed; the results shown are those already received. It will be retried next time.";
    DmpLastSync => "Dernière synchronisation réussie :", "Last successful sync:";
    DmpFound => "documents au DMP", "documents in the DMP";
    DmpNew => "nouveaux", "new";
    DmpNotRetrieved => "non récupérés", "not retrieved";
    DmpReload => "afficher les nouveaux documents", "show the new documents";
    AccountActive => "Actif", "Active";
    AccountDisabled => "Désactivé", "Disabled";
    Disable => "Désactiver", "Disable";
    Enable => "Réactiver", "Enable";
    PlainIntro => "Vos derniers résultats, analyse par analyse. Seul votre médecin peut les interpréter pour vous : parlez-lui de toute question.", "Your latest results, test by test. Only your doctor can interpret them for you: ask them any question.";
    PlainSignificantRise => "Changement important depuis la dernière fois (en hausse)", "A significant change since last time (up)";
    PlainSignificantFall => "Changement important depuis la dernière fois (en baisse)", "A significant change since last time (down)";
    PlainSmallChange => "Peu de changement depuis la dernière fois", "Little change since last time";
    PlainNotCompared => "Pas de comparaison possible avec la dernière fois", "No comparison possible with last time";
    PlainFirst => "Premier résultat", "First result";
    PageNotFound => "Page introuvable.", "Page not found.";
    Loading => "Chargement…", "Loading…";
    ErrorLoading => "Le chargement a échoué. Réessayez ; si cela persiste, contactez l'administrateur.", "Loading failed. Try again; if it persists, contact the administrator.";
    ProblemLabel => "Problème", "Problem";
    Results => "Résultats cumulés", "Cumulative results";
    ResultsLink => "Voir les résultats cumulés →", "See cumulative results →";
    DocumentsLink => "← Documents du patient", "← Patient's documents";
    ResultsIntro => "Tous les laboratoires, une ligne par analyse, dans une même unité. Les valeurs converties sont marquées ; survolez ou sélectionnez-les pour voir l'original.", "All laboratories, one row per test, in one unit. Converted values are marked; hover or focus them to see the original.";
    Units => "Unités", "Units";
    UnitsSi => "Molaires (SI)", "Molar (SI)";
    UnitsConventional => "Massiques", "Mass";
    Chapter => "Chapitre", "Chapter";
    AllChapters => "Tous les chapitres", "All chapters";
    SearchAnalyte => "Rechercher une analyse", "Search a test";
    AbnormalOnly => "Anormaux seulement", "Abnormal only";
    PrintFilters => "Filtres (résultats non imprimés)", "Filters (results not printed)";
    Older => "← Plus anciens", "← Older";
    Newer => "Plus récents →", "Newer →";
    NotPerformed => "Non réalisé", "Not performed";
    Analyte => "Analyse", "Test";
    Unit => "Unité", "Unit";
    NoResults => "Aucun résultat ne correspond.", "No result matches.";
    ConvertedMark => "Valeur convertie", "Converted value";
    OriginalValue => "Valeur d'origine", "Original value";
    ReportOf => "compte rendu du", "report of";
    SameDayResult => "Autre résultat du même jour", "Another result the same day";
    ReasonNotCrBio => "pas un compte rendu de biologie", "not a laboratory report";
    ReasonNoIns => "sans INS du patient : attribution impossible", "no patient INS: cannot be attributed";
    ReasonAnotherPatient => "concerne un autre patient", "about another patient";
    ReasonPdfOnly => "PDF seul : pas de résultats structurés", "PDF only: no structured results";
    ReasonReplacedBy => "remplacé par la version", "replaced by version";
    ReasonWasPartial => "c'était un compte rendu partiel", "this one was a partial report";
    ReasonConflictsWithLaboratory => "document téléversé en conflit avec la version du laboratoire, qui est conservée :", "uploaded document in conflict with the laboratory's version, which stays:";
    ReasonIdentityConflict => "l'INS du patient avec une autre identité : ce document concerne peut-être quelqu'un d'autre", "the patient's INS with another identity: this document may be about someone else";
    ReasonIdentityBirthDate => "date de naissance", "birth date";
    ReasonIdentitySex => "sexe", "sex";
    ReasonNameDiffers => "l'INS du patient avec un autre nom", "the patient's INS with another name";
    ReasonInsAuthorityDiffers => "l'INS du patient sous une autre autorité (OID)", "the patient's INS under another authority (OID)";
    UploadedBy => "Téléversé par", "Uploaded by";
    NoIns => "sans INS", "no INS";
    PatientKey => "Identifiant", "Identifier";
    LinkedRecords => "Autres dossiers de ce patient", "Other records of this patient";
    LinkedRecordsIntro => "Un dossier sous INS et un dossier sous INS-C (avant 2021) d'une même personne peuvent être liés : chacun montre alors les documents des deux. Le lien est enregistré, visible du patient, et réversible.", "A record under the INS and one under the INS-C (before 2021) of one person can be linked: each then shows the documents of both. The link is recorded, shown to the patient, and can be undone.";
    LinkOtherLabel => "INS, INS-C ou OID^identifiant de l'autre dossier", "INS, INS-C or OID^identifier of the other record";
    Link => "Lier", "Link";
    Unlink => "Délier", "Unlink";
    LinkRefused => "Lien impossible : aucun dossier que vous pouvez consulter ne porte cet identifiant.", "Cannot link: no record you may see has this identifier.";
    UploadedMark => "téléversé", "uploaded";
    ProvenanceDmp => "DMP", "DMP";
    ProvenanceOperator => "import de l'exploitant", "operator's import";
    ProvenanceUpload => "téléversement", "upload";
    Provenance => "Provenance", "Source";
    AdminNationalIdTaken => "Un autre compte porte déjà cet identifiant national.", "Another account has this national id.";
    AdminBadNationalId => "Un identifiant national s'écrit OID^numéro (par exemple 1.2.250.1.71.4.2.1^810000000011).", "A national id is OID^number (e.g. 1.2.250.1.71.4.2.1^810000000011).";
    AdminNationalIdNotAProfessional => "Seuls les professionnels portent un identifiant national.", "Only professionals carry a national id.";
    PreviousVisit => "Ma dernière consultation", "My last visit";
    RuleIdentity => "tel qu'écrit", "as written";
    RuleAlias => "même unité, autre écriture", "same unit, another spelling";
    RuleDecimalShift => "puissance de dix", "power of ten";
    RuleFactor => "facteur d'unité", "unit factor";
    RuleMolarMass => "par la masse molaire", "through the molar mass";
    RuleHbA1c => "équation HbA1c NGSP/IFCC", "HbA1c NGSP/IFCC equation";
    RuleMonovalent => "mEq/L = mmol/L (ion monovalent)", "mEq/L = mmol/L (monovalent ion)";
    RuleEnzymeIu => "UI d'activité enzymatique = U", "enzyme activity IU = U";
    UnitUnknown => "non converti : unité inconnue", "not converted: unknown unit";
    UnitMissing => "non converti : pas d'unité", "not converted: no unit given";
    UnitIncompatible => "non converti : grandeurs différentes", "not converted: different quantities";
    UnitNeedsMolarMass => "non converti : masse molaire inconnue", "not converted: no molar mass known";
    UnitNotRatio => "non converti : échelle sans conversion", "not converted: a scale with no conversion";
    UnitBadNumber => "non converti : nombre illisible", "not converted: unreadable number";
    CodeLabel => "code", "code";
    Source => "Source", "Source";
    Derived => "Calculé par Bioviewer", "Computed by Bioviewer";
    High => "élevé", "high";
    Low => "bas", "low";
    Abnormal => "anormal", "abnormal";
    NormalFlag => "normal", "normal";
    ComputedValue => "calculé", "computed";
    PreviousResult => "résultat antérieur repris", "previous result repeated";
    SignificantRise => "hausse significative", "significant rise";
    SignificantFall => "baisse significative", "significant fall";
    ColumnsShown => "colonnes", "columns";
    OtherResults => "Autres résultats (codes non reconnus)", "Other results (unrecognised codes)";
    BackToResults => "← Résultats cumulés", "← Cumulative results";
    ExportCsv => "Exporter (CSV)", "Export (CSV)";
    ExportFhir => "Exporter (FHIR)", "Export (FHIR)";
    Summary => "Synthèse", "Summary";
    Panels => "Bilans en un coup d'œil", "Panels at a glance";
    Panel => "Bilan", "Panel";
    PanelRenal => "Rénal", "Renal";
    PanelLipids => "Lipidique", "Lipids";
    PanelDiabetes => "Glycémique", "Diabetes";
    PanelBloodCount => "Numération", "Blood count";
    PanelLiver => "Hépatique", "Liver";
    PanelThyroid => "Thyroïdien", "Thyroid";
    PanelIron => "Martial", "Iron";
    NoPanelResults => "Aucun résultat pour ce bilan.", "No result for this panel.";
    SinceLastVisit => "Nouveau depuis le", "New since";
    NewMark => "nouveau", "new";
    PrintedFor => "Patient", "Patient";
    Period => "Période", "Period";
    // The cumulative table's range column, legend and print view; the summary's cards.
    RangeVaries => "variable selon le laboratoire", "varies by lab";
    RangeInTip => "Valeurs de référence", "Reference range";
    Legend => "Légende", "Legend";
    LegendHigh => "au-dessus des valeurs de référence (↑↑ : très au-dessus)", "above the reference range (↑↑: far above)";
    LegendLow => "au-dessous des valeurs de référence (↓↓ : très au-dessous)", "below the reference range (↓↓: far below)";
    LegendAbnormal => "anormal selon le laboratoire", "abnormal according to the laboratory";
    LegendRise => "hausse significative depuis la valeur précédente", "significant rise since the previous value";
    LegendFall => "baisse significative depuis la valeur précédente", "significant fall since the previous value";
    LegendUploaded => "valeur d'un document téléversé par un utilisateur, pas reçu d'un laboratoire", "value from a document a user uploaded, not received from a laboratory";
    LegendConverted => "converti depuis l'unité du laboratoire (valeur d'origine dans l'infobulle)", "converted from the laboratory's unit (original value in the tip)";
    LegendComputed => "en italique : calculé par Bioviewer (DFG depuis la créatinine du jour)", "in italics: computed by Bioviewer (eGFR from the day's creatinine)";
    LegendMore => "autres résultats le même jour (dans l'infobulle)", "other results the same day (in the tip)";
    LegendCritical => "valeur critique : au-delà d'une limite critique publiée", "critical value: beyond a published critical limit";
    LegendTarget => "jugé par rapport à la cible thérapeutique fixée pour ce patient (plage du laboratoire dans l'infobulle)", "judged against the treatment target set for this patient (the laboratory's range in the tip)";
    LegendVaries => "les laboratoires ont des valeurs de référence différentes (détail dans l'infobulle)", "the laboratories' reference ranges differ (details in the tip)";
    AllPeriods => "Tout", "All";
    PrintPeriod => "Imprimer la période", "Print the period";
    PrintNow => "Imprimer", "Print";
    PrintViewIntro => "Vue d'impression : toutes les dates de la période choisie, par blocs de colonnes.", "Print view: every date of the chosen period, in blocks of columns.";
    BackToTable => "← Retour au tableau", "← Back to the table";
    PrintedBy => "Imprimé par", "Printed by";
    PrintedAt => "le", "on";
    PrintScreenOnly => "Cette impression ne contient que les colonnes affichées ; « Imprimer la période » imprime toute la période.", "This printout holds only the columns on screen; \"Print the period\" prints the whole period.";
    Columns => "Colonnes", "Columns";
    TableKeyboardHint => "Flèches : d'une valeur à l'autre ; Début/Fin : début/fin de ligne ; Page préc./suiv. : 10 lignes.", "Arrows: from value to value; Home/End: start/end of the row; Page Up/Down: 10 rows.";
    PreviousValue => "Précédent", "Previous";
    OldResult => "ancien (plus d'un an)", "old (over a year)";
    NoSignificantChange => "sans changement significatif", "no significant change";
    ChangeNotJudged => "variation non évaluée", "change not assessed";
    SameSamplingResult => "Autre résultat du même prélèvement", "Another result of the same sampling";
    LaterUploadedResult => "Résultat plus récent, téléversé", "More recent result, uploaded";
    SkipChart => "Passer le graphique (aller au tableau des résultats)", "Skip the chart (go to the table of results)";
    ResultsOfSummary => "Voir la synthèse", "See the summary";
    SeeInTable => "dans le tableau", "in the table";
    PageDocuments => "Documents", "Documents";
    PageDocument => "Document", "Document";
    PageAccessLog => "Journal des accès", "Access log";
    SearchPatient => "Rechercher un patient", "Find a patient";
    SearchPatientHint => "INS, nom ou date de naissance (JJ/MM/AAAA)", "INS, name or date of birth (YYYY-MM-DD)";
    Document => "Document", "Document";
    LabNarrative => "Le compte rendu tel que rédigé par le laboratoire", "The report as the laboratory wrote it";
    Attachments => "Pièces jointes", "Attachments";
    Download => "Télécharger", "Download";
    OpenAttachment => "Ouvrir", "Open";
    PurposeReportCopy => "Copie PDF du compte rendu", "PDF copy of the report";
    PurposeSecondIntention => "Compte rendu d'un second laboratoire", "Report of a second laboratory";
    PurposeIllustration => "Illustration", "Illustration";
    PurposeOther => "Autre pièce jointe", "Other attachment";
    KindPointOfCare => "Test rapide (TROD)", "Rapid test (point of care)";
    PointOfCareMark => "test rapide hors laboratoire", "point-of-care rapid test";
    PointOfCareIntro => "Test rapide d'orientation diagnostique (TROD) réalisé hors laboratoire (pharmacie, cabinet) : un résultat d'orientation, à confirmer si besoin par un laboratoire.", "A point-of-care rapid diagnostic test (pharmacy, practice): a screening result, to be confirmed by a laboratory when needed.";
    ReportResultsHeading => "Résultats de ce compte rendu", "Results of this report";
    NoReportResults => "Aucun résultat structuré dans ce document.", "No structured result in this document.";
    Prescriber => "Prescripteur", "Prescriber";
    SampledAt => "Prélèvement", "Sampling";
    ValidatedAt => "Validation", "Validation";
    ReferenceRange => "Valeurs de référence", "Reference range";
    ResultColumn => "Résultat", "Result";
    DiscordantText => "discordance : le texte du compte rendu dit", "discrepancy: the report's text says";
    OrganismHeading => "Germe identifié", "Organism identified";
    Antibiotic => "Antibiotique", "Antibiotic";
    SirColumn => "Interprétation du laboratoire", "Laboratory's interpretation";
    MicColumn => "CMI", "MIC";
    Susceptible => "sensible", "susceptible";
    Intermediate => "intermédiaire", "intermediate";
    Resistant => "résistant", "resistant";
    PdfFallback => "Si la copie ne s'affiche pas ici :", "If the copy does not show here:";
    OpenPdf => "ouvrir le PDF", "open the PDF";
    Contents => "Contenu", "Contents";
    AbnormalResults => "anormal(s)", "abnormal";
    TechnicalDetails => "Détails techniques", "Technical details";
    PositiveFlag => "positif", "positive";
    NegativeFlag => "négatif", "negative";
    QualitativeHeading => "Résultats non chiffrés positifs ou anormaux", "Positive or abnormal non-numeric results";
    QualitativeIntro => "Tests rapides, sérologies, cytologie… : le dernier résultat de chaque examen que le laboratoire, ou son libellé, dit positif ou anormal.", "Rapid tests, serology, cytology…: the latest result of each test that the laboratory, or its wording, says is positive or abnormal.";
    OpenReport => "voir le compte rendu", "see the report";
    DocumentNotFound => "Document introuvable pour ce patient.", "No such document for this patient.";
    SummaryLink => "Synthèse : dernières valeurs →", "Summary: latest values →";
    SummaryIntro => "La dernière valeur de chaque analyse ; les valeurs anormales et les variations significatives d'abord.", "The latest value of every test; abnormal values and significant changes first.";
    Since => "Depuis la précédente", "Since the previous";
    Rising => "en hausse", "rising";
    Falling => "en baisse", "falling";
    Stable => "stable", "stable";
    NoPrevious => "première valeur", "first value";
    AllLaboratories => "Tous les laboratoires", "All laboratories";
    DataQuality => "Qualité des données", "Data quality";
    DataQualityIntro => "Ce qui n'a pas pu être rangé, converti ou lu : rien n'est masqué.", "What could not be filed, converted or read: nothing is hidden.";
    UnmappedCodes => "Codes non reconnus", "Unrecognised codes";
    NotConverted => "Valeurs non converties", "Values not converted";
    UnmappedResults => "Résultats de ces codes", "Results under those codes";
    UnreadableDocuments => "Documents illisibles", "Unreadable documents";
    RejectedDocuments => "Documents rejetés", "Rejected documents";
    ReplacedDocuments => "Versions remplacées", "Replaced versions";
    Count => "Nombre", "Count";
    Latest => "Dernier résultat", "Latest result";
    Trend => "Évolution", "Trend";
    TrendIntro => "Axe du temps proportionnel ; bande de référence de chaque laboratoire ; triangles ouverts : valeurs sous ou au-dessus d'un seuil ; cercles vides : valeurs calculées ; la ligne s'interrompt quand le laboratoire, la méthode ou les normes changent.", "Proportional time axis; each laboratory's reference band; open triangles: values below or above a threshold; hollow circles: computed values; the line breaks when laboratory, method or range change.";
    From => "Du", "From";
    To => "Au", "To";
    NoChart => "Aucune valeur numérique à tracer sur cette période.", "No numeric value to plot in this period.";
    // Trend chart and its controls (analyte page).
    ChartUploaded => "valeur téléversée (hors courbe)", "uploaded value (off the line)";
    ChartReferenceRange => "bande : valeurs de référence du laboratoire", "band: the laboratory's reference range";
    ChartTarget => "Cible", "Target";
    ChartRightAxis => "axe de droite", "right axis";
    PeriodHint => "jusqu'au dernier résultat", "up to the latest result";
    PeriodOneMonth => "1 mois", "1 month";
    PeriodSixMonths => "6 mois", "6 months";
    PeriodOneYear => "1 an", "1 year";
    PeriodFiveYears => "5 ans", "5 years";
    PeriodAll => "Tout", "All";
    CompareWith => "Comparer avec", "Compare with";
    CompareNone => "aucune autre analyse", "no other test";
    CompareApply => "Afficher", "Show";
    ShowWith => "Afficher avec", "Show with";
    HideOverlay => "Retirer la seconde analyse", "Remove the second test";
    NoPointsInPeriod => "Aucun résultat sur cette période.", "No result in this period.";
    Points => "Tous les résultats", "All results";
    Date => "Date", "Date";
    Value => "Valeur", "Value";
    Reference => "Valeurs de référence", "Reference range";
    Method => "Méthode", "Method";
    Sources => "Sources", "Sources";
    Rule => "Conversion", "Conversion";
    AnalyteNotFound => "Cette analyse n'a pas de résultats pour ce patient.", "This test has no results for this patient.";
    TargetHeading => "Cible thérapeutique", "Treatment target";
    TargetIntro => "Fixée par un clinicien pour ce patient (par exemple INR 2–3 sous antivitamine K, HbA1c < 7 %) : les résultats sont alors signalés par rapport à la cible, et la plage de référence du laboratoire reste affichée.", "Set by a clinician for this patient (for example INR 2–3 under a vitamin K antagonist, HbA1c < 7 %): results are then flagged against the target, and the laboratory's reference range is still shown.";
    TargetNone => "Aucune cible : les résultats sont signalés par rapport à la plage de référence du laboratoire.", "No target: results are flagged against the laboratory's reference range.";
    TargetCurrent => "Cible actuelle :", "Current target:";
    TargetSetBy => "fixée par", "set by";
    TargetOn => "le", "on";
    TargetNotApplied => "Cette cible est dans une autre unité que celle affichée et n'a pas pu y être convertie : elle n'est pas appliquée.", "This target is in another unit than the one shown and could not be converted: it is not applied.";
    TargetLow => "Borne basse", "Low bound";
    TargetHigh => "Borne haute", "High bound";
    TargetBoundsHint => "Une borne peut rester vide : pour HbA1c < 7 %, seulement la borne haute 7.", "A bound may stay empty: for HbA1c < 7 %, only the high bound 7.";
    TargetSave => "Enregistrer la cible", "Save the target";
    TargetEnd => "Supprimer la cible", "End the target";
    TargetSaved => "Cible enregistrée : les résultats sont signalés par rapport à elle.", "Target saved: results are flagged against it.";
    TargetEnded => "Cible supprimée : les résultats sont de nouveau signalés par rapport à la plage du laboratoire.", "Target ended: results are flagged against the laboratory's range again.";
    TargetErrNoBound => "Donnez au moins une borne.", "Give at least one bound.";
    TargetErrImplausible => "Valeur invraisemblable : entre 0,001 et 100 000, 4 décimales au plus.", "Implausible value: between 0.001 and 100,000, 4 decimals at most.";
    TargetErrNotANumber => "Une borne n'est pas un nombre (exemple : 2,5).", "A bound is not a number (example: 2.5).";
    TargetErrNegative => "Une borne ne peut pas être négative.", "A bound cannot be negative.";
    TargetErrLowNotBelowHigh => "La borne basse doit être inférieure à la borne haute.", "The low bound must be below the high bound.";
    TargetErrNotNumeric => "Cette analyse n'accepte pas de cible chiffrée.", "This test takes no numeric target.";
    TargetErrWrongUnit => "L'unité de la cible n'est pas une unité de cette analyse.", "The target's unit is not a unit of this test.";
    TargetOnlyClinicians => "Seul un clinicien peut fixer une cible.", "Only a clinician can set a target.";
    AgainstTarget => "par rapport à la cible", "against the target";
    InTarget => "dans la cible", "in target";
    LabRange => "plage du laboratoire", "laboratory's range";
    CriticalValue => "valeur critique", "critical value";
    CriticalHigh => "valeur critique haute", "critical high value";
    CriticalLow => "valeur critique basse", "critical low value";
    ActionTargetSet => "Cible thérapeutique fixée ou modifiée", "Treatment target set or changed";
    ActionTargetEnded => "Cible thérapeutique supprimée", "Treatment target ended";
}

/// Chapter names of the analyte catalogue.
pub fn chapter_name(chapter: &str, lang: Lang) -> String {
    let (fr, en) = match chapter {
        "haematology" => ("Hématologie", "Haematology"),
        "haemostasis" => ("Hémostase", "Haemostasis"),
        "biochemistry" => ("Biochimie", "Biochemistry"),
        "lipids" => ("Lipides", "Lipids"),
        "endocrinology" => ("Endocrinologie", "Endocrinology"),
        "iron" => ("Bilan martial", "Iron studies"),
        "inflammation" => ("Inflammation", "Inflammation"),
        "proteins" => ("Protéines", "Proteins"),
        "vitamins" => ("Vitamines et oligo-éléments", "Vitamins and trace elements"),
        "cardiac" => ("Marqueurs cardiaques", "Cardiac markers"),
        "tumour_markers" => ("Marqueurs tumoraux", "Tumour markers"),
        "urine" => ("Urines", "Urine"),
        "blood_gases" => ("Gaz du sang", "Blood gases"),
        "drug_levels" => ("Dosages de médicaments", "Drug levels"),
        "toxicology" => ("Toxicologie", "Toxicology"),
        "immunology" => ("Immunologie", "Immunology"),
        "serology" => ("Sérologie", "Serology"),
        "microbiology" => ("Microbiologie", "Microbiology"),
        other => (other, other),
    };
    match lang {
        Lang::Fr => fr.to_string(),
        Lang::En => en.to_string(),
    }
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
            .and_then(|parts| parts.headers.get_all(http::header::COOKIE).iter().find_map(|v| Lang::from_cookie_header(v.to_str().ok()?)))
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
    fn reading_problems_are_said_in_the_readers_language() {
        use crate::components::problem_text;
        assert_eq!(
            problem_text(Lang::Fr, Some("truncated:120:4")),
            "Le document est tronqué : il s'arrête avant sa fin. (ligne 120, colonne 4)"
        );
        assert_eq!(
            problem_text(Lang::En, Some("doctype_refused:1:10")),
            "The document contains a DOCTYPE declaration, refused for safety. (line 1, column 10)"
        );
        assert_eq!(problem_text(Lang::Fr, None), "Le document n'a pas pu être lu.");
    }

    #[test]
    fn french_uses_a_decimal_comma() {
        assert_eq!(Lang::Fr.decimal("4.25"), "4,25");
        assert_eq!(Lang::En.decimal("4.25"), "4.25");
    }
}
