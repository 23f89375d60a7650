//! Realistic generated histories: patients with clinical stories, seen by laboratories with
//! their own habits, as CR-BIO reports (written by [`crate::cda::writer`]).
//!
//! Deterministic for a seed. Every patient is fictitious, with a test INS (OID `.10`) whose key
//! is valid. What laboratories do differently, on purpose: molar or mass units, which LOINC code
//! for TSH and glucose, `G/L` or `10*9/L`, a local code for CRP, their own reference ranges and
//! methods, previous results repeated as REFR, partial reports followed by complete ones,
//! occasional aborted and censored results.

use crate::cda::{
    CdaTime, Code, Comparator, Decimal, Header, InstanceId, Observation, Organization, Patient, PersonName, Quantity, ReferenceRange,
    Report, ReportStatus, ResultStatus, Sex, Value, oid,
};

/// A small deterministic generator (xorshift64*): the same seed gives the same histories.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (sum of uniforms), mean 0, sd 1.
    fn normal(&mut self) -> f64 {
        (0..6).map(|_| self.unit()).sum::<f64>() - 3.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A laboratory and its habits.
struct Lab {
    name: &'static str,
    finess: &'static str,
    /// Reports glucose, creatinine, lipids... in mass units (g/L, mg/L) rather than molar.
    mass_units: bool,
    /// Writes G/L and T/L rather than 10*9/L and 10*12/L.
    giga_per_litre: bool,
    /// Codes TSH 29575-8 rather than 3016-3.
    tsh_alternative_code: bool,
    /// Has no LOINC for CRP: its local code under its own OID (mapped in the transcoding table).
    local_crp: Option<&'static str>,
    /// Multiplies the upper reference limits (each laboratory its own ranges).
    range_factor: f64,
    method: &'static str,
    /// Before the INS (2021), wrote the patient's 13-digit NIR (no key) beside the INS-C.
    nir_beside_ins_c: bool,
}

const LABS: [Lab; 5] = [
    Lab {
        name: "Laboratoire des Charmes",
        finess: "920000011",
        mass_units: false,
        giga_per_litre: true,
        tsh_alternative_code: false,
        local_crp: None,
        range_factor: 1.0,
        method: "Cobas",
        nir_beside_ins_c: false,
    },
    Lab {
        name: "Biologie Saint-Martin",
        finess: "750000022",
        mass_units: true,
        giga_per_litre: true,
        tsh_alternative_code: true,
        local_crp: None,
        range_factor: 1.04,
        method: "Alinity",
        nir_beside_ins_c: true,
    },
    Lab {
        name: "LBM du Parc",
        finess: "690000033",
        mass_units: false,
        giga_per_litre: false,
        tsh_alternative_code: false,
        local_crp: None,
        range_factor: 0.97,
        method: "Atellica",
        nir_beside_ins_c: false,
    },
    Lab {
        name: "Cerballiance Rive Gauche",
        finess: "330000044",
        mass_units: true,
        giga_per_litre: true,
        tsh_alternative_code: true,
        local_crp: None,
        range_factor: 1.02,
        method: "Architect",
        nir_beside_ins_c: false,
    },
    Lab {
        name: "CHU — Laboratoire central",
        finess: "130000055",
        mass_units: false,
        giga_per_litre: false,
        tsh_alternative_code: false,
        local_crp: Some("1.2.250.1.999.7.1"),
        range_factor: 1.0,
        method: "Vitros",
        nir_beside_ins_c: true,
    },
];

/// A clinical story: which tests, how often, how values move.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Story {
    Type2Diabetes,
    ChronicKidneyDisease,
    Anticoagulation,
    Hypothyroidism,
    IronDeficiency,
    HealthyAdult,
    /// End-stage kidney disease on haemodialysis: a check every week (the longest histories).
    Haemodialysis,
}

const STORIES: [Story; 7] = [
    Story::Type2Diabetes,
    Story::ChronicKidneyDisease,
    Story::Anticoagulation,
    Story::Hypothyroidism,
    Story::IronDeficiency,
    Story::HealthyAdult,
    Story::Haemodialysis,
];

/// One test: codes (molar lab, mass lab), units (molar, mass), mass-per-molar factor, reference
/// range in molar units, decimals.
struct Test {
    id: &'static str,
    code_molar: &'static str,
    code_mass: &'static str,
    unit_molar: &'static str,
    unit_mass: &'static str,
    mass_per_molar: f64,
    low: f64,
    high: f64,
    decimals: usize,
    label: &'static str,
}

const fn test(id: &'static str, code: &'static str, unit: &'static str, low: f64, high: f64, decimals: usize, label: &'static str) -> Test {
    Test { id, code_molar: code, code_mass: code, unit_molar: unit, unit_mass: unit, mass_per_molar: 1.0, low, high, decimals, label }
}

const TESTS: &[Test] = &[
    Test {
        id: "glucose",
        code_molar: "14749-6",
        code_mass: "2345-7",
        unit_molar: "mmol/L",
        unit_mass: "g/L",
        mass_per_molar: 0.180156,
        low: 3.9,
        high: 6.1,
        decimals: 2,
        label: "Glucose",
    },
    test("hba1c", "4548-4", "%", 4.0, 6.0, 1, "Hémoglobine glyquée"),
    Test {
        id: "creatinine",
        code_molar: "14682-9",
        code_mass: "2160-0",
        unit_molar: "umol/L",
        unit_mass: "mg/L",
        mass_per_molar: 0.11312,
        low: 45.0,
        high: 90.0,
        decimals: 0,
        label: "Créatinine",
    },
    test("potassium", "2823-3", "mmol/L", 3.5, 5.0, 1, "Potassium"),
    test("sodium", "2951-2", "mmol/L", 135.0, 145.0, 0, "Sodium"),
    Test {
        id: "urea",
        code_molar: "22664-7",
        code_mass: "3091-6",
        unit_molar: "mmol/L",
        unit_mass: "g/L",
        mass_per_molar: 0.060056,
        low: 2.5,
        high: 7.5,
        decimals: 1,
        label: "Urée",
    },
    Test {
        id: "cholesterol",
        code_molar: "14647-2",
        code_mass: "2093-3",
        unit_molar: "mmol/L",
        unit_mass: "g/L",
        mass_per_molar: 0.38665,
        low: 0.0,
        high: 5.2,
        decimals: 2,
        label: "Cholestérol total",
    },
    Test {
        id: "ldl",
        code_molar: "22748-8",
        code_mass: "13457-7",
        unit_molar: "mmol/L",
        unit_mass: "g/L",
        mass_per_molar: 0.38665,
        low: 0.0,
        high: 3.0,
        decimals: 2,
        label: "Cholestérol LDL",
    },
    Test {
        id: "triglycerides",
        code_molar: "14927-8",
        code_mass: "2571-8",
        unit_molar: "mmol/L",
        unit_mass: "g/L",
        mass_per_molar: 0.8857,
        low: 0.0,
        high: 1.7,
        decimals: 2,
        label: "Triglycérides",
    },
    test("alt", "1742-6", "U/L", 0.0, 40.0, 0, "ALAT"),
    test("tsh", "3016-3", "m[IU]/L", 0.27, 4.2, 2, "TSH"),
    Test {
        id: "ft4",
        code_molar: "14920-3",
        code_mass: "3024-7",
        unit_molar: "pmol/L",
        unit_mass: "pg/mL",
        mass_per_molar: 0.77687,
        low: 12.0,
        high: 22.0,
        decimals: 1,
        label: "T4 libre",
    },
    test("inr", "6301-6", "1", 0.8, 1.2, 1, "INR"),
    test("haemoglobin", "718-7", "g/dL", 12.0, 16.0, 1, "Hémoglobine"),
    test("leukocytes", "6690-2", "10*9/L", 4.0, 10.0, 1, "Leucocytes"),
    test("platelets", "777-3", "10*9/L", 150.0, 400.0, 0, "Plaquettes"),
    test("mcv", "787-2", "fL", 80.0, 100.0, 0, "VGM"),
    test("ferritin", "2276-4", "ug/L", 15.0, 150.0, 0, "Ferritine"),
    test("crp", "1988-5", "mg/L", 0.0, 5.0, 1, "CRP"),
    test("urine_acr", "9318-7", "mg/g", 0.0, 30.0, 0, "Albuminurie/créatininurie"),
];

fn test_by_id(id: &str) -> &'static Test {
    TESTS.iter().find(|t| t.id == id).expect("a test of the table")
}

impl Story {
    /// Days between visits and the tests of each visit.
    fn plan(self) -> (i64, &'static [&'static str]) {
        match self {
            Story::Type2Diabetes => (91, &["glucose", "hba1c", "creatinine", "potassium", "cholesterol", "ldl", "triglycerides", "alt"]),
            Story::ChronicKidneyDisease => (61, &["creatinine", "urea", "potassium", "sodium", "haemoglobin", "urine_acr"]),
            Story::Anticoagulation => (30, &["inr", "haemoglobin", "platelets"]),
            Story::Hypothyroidism => (120, &["tsh", "ft4", "cholesterol"]),
            Story::IronDeficiency => (75, &["haemoglobin", "mcv", "ferritin", "crp", "leukocytes", "platelets"]),
            Story::Haemodialysis => (7, &["creatinine", "urea", "potassium", "sodium", "haemoglobin"]),
            Story::HealthyAdult => {
                (365, &["glucose", "creatinine", "cholesterol", "ldl", "haemoglobin", "leukocytes", "platelets", "tsh", "crp"])
            }
        }
    }

    /// The true value (molar units) of a test at `progress` (0 → 1 over the history), at the
    /// patient's `visit`-th visit (from 0).
    fn level(self, id: &str, progress: f64, visit: usize, r: &mut Random) -> f64 {
        let t = test_by_id(id);
        let normal = (t.low + t.high) / 2.0;
        let noise = 1.0 + 0.04 * r.normal();
        let v = match (self, id) {
            // HbA1c climbs to 8.5 %, then treatment brings it back to 6.8 %.
            (Story::Type2Diabetes, "hba1c") => 6.2 + 2.3 * (progress * 2.0).min(1.0) - 1.7 * ((progress - 0.5) * 2.0).clamp(0.0, 1.0),
            (Story::Type2Diabetes, "glucose") => 6.5 + 4.0 * (progress * 2.0).min(1.0) - 3.0 * ((progress - 0.5) * 2.0).clamp(0.0, 1.0),
            (Story::Type2Diabetes, "triglycerides") => 2.1,
            // Creatinine doubles over the years; potassium follows.
            (Story::ChronicKidneyDisease, "creatinine") => 110.0 * (1.0 + progress * 1.2),
            (Story::ChronicKidneyDisease, "urea") => 9.0 * (1.0 + progress),
            // A severe hyperkalaemia once (the fourth visit, after an ACE inhibitor was started),
            // beyond the critical limit; corrected by the next visit.
            (Story::ChronicKidneyDisease, "potassium") if visit == 3 => 7.2,
            (Story::ChronicKidneyDisease, "potassium") => 4.6 + 0.8 * progress,
            (Story::ChronicKidneyDisease, "haemoglobin") => 13.0 - 2.0 * progress,
            (Story::ChronicKidneyDisease, "urine_acr") => 60.0 + 250.0 * progress,
            // INR in the 2–3 target, with excursions.
            (Story::Anticoagulation, "inr") => {
                let excursion = if r.unit() < 0.08 { 1.5 * r.unit() + 0.8 } else { 0.0 };
                2.5 + 0.3 * r.normal() + excursion
            }
            // TSH high at diagnosis, normal under levothyroxine after a year.
            (Story::Hypothyroidism, "tsh") => {
                if progress < 0.12 {
                    14.0
                } else {
                    2.0
                }
            }
            (Story::Hypothyroidism, "ft4") => {
                if progress < 0.12 {
                    9.0
                } else {
                    16.0
                }
            }
            (Story::Hypothyroidism, "cholesterol") => 6.4 - 1.2 * progress.min(0.3) / 0.3,
            // Iron deficiency, then iron supplementation from the second third.
            (Story::IronDeficiency, "haemoglobin") => 10.2 + 3.0 * ((progress - 0.33) * 3.0).clamp(0.0, 1.0),
            (Story::IronDeficiency, "mcv") => 74.0 + 14.0 * ((progress - 0.33) * 3.0).clamp(0.0, 1.0),
            (Story::IronDeficiency, "ferritin") => 6.0 + 60.0 * ((progress - 0.33) * 3.0).clamp(0.0, 1.0),
            (_, "crp") => 2.0 * r.unit() + if r.unit() < 0.1 { 30.0 * r.unit() } else { 0.0 },
            (_, "hba1c") => 5.4,
            (_, "inr") => 1.0,
            (_, "cholesterol") => 5.0,
            (_, "ldl") => 2.9,
            (_, "alt") => 25.0,
            (_, "tsh") => 1.8,
            (_, "urine_acr") => 10.0,
            // Pre-dialysis values: high creatinine, urea and potassium, anaemia under treatment.
            (Story::Haemodialysis, "creatinine") => 650.0 + 150.0 * r.unit(),
            (Story::Haemodialysis, "urea") => 20.0 + 8.0 * r.unit(),
            (Story::Haemodialysis, "potassium") => 5.0 + 0.8 * r.unit(),
            (Story::Haemodialysis, "haemoglobin") => 10.5 + 1.0 * r.unit(),
            _ => normal,
        };
        (v * noise).max(0.0)
    }
}

/// A valid test INS for patient `n`: 13 digits then the key (97 − number mod 97).
pub fn test_ins(n: usize, sex: Sex) -> String {
    let sex_digit = if sex == Sex::Female { 2 } else { 1 };
    let number = format!("{sex_digit}{:02}{:02}75{:03}{:03}", 50 + n % 40, 1 + n % 12, 100 + n % 900, 300 + n);
    let number = &number[..13];
    let key = 97 - number.parse::<u64>().expect("digits") % 97;
    format!("{number}{key:02}")
}

const NAMES: [(&str, &str, Sex); 8] = [
    ("MARTIN", "Claire", Sex::Female),
    ("BERNARD", "Jacques", Sex::Male),
    ("PETIT", "Nadia", Sex::Female),
    ("ROUX", "Étienne", Sex::Male),
    ("FAURE", "Hélène", Sex::Female),
    ("GIRARD", "Mathieu", Sex::Male),
    ("LEROY", "Inès", Sex::Female),
    ("MOREL", "Théo", Sex::Male),
];

/// The INS of generated patient `n` (the same one `generate` writes).
pub fn patient_ins(n: usize) -> String {
    test_ins(n, NAMES[n % NAMES.len()].2)
}

/// The first day (days since 1970) laboratories named the patient by the INS: 1 January 2021.
/// Before it, reports and the DMP named them by the INS-C.
pub const INS_SWITCH_DAY: i64 = 18_628;

/// The legacy INS-C of generated patient `n`: 22 digits (20 then a 2-digit key, 97 − number
/// mod 97). SYNTHETIC: the real INS-C is computed from the NIR, first name and birth date by
/// an algorithm this generator does not reproduce; here the digits come from a hash of the
/// patient's NIR and first name. Like [`patient_ins`] it depends on `n` only, not on the
/// generator's seed, so a patient keeps the same identifiers whatever the seed (the demo
/// accounts and `identities.tsv` rely on it).
pub fn patient_ins_c(n: usize) -> String {
    let (_, given, _) = NAMES[n % NAMES.len()];
    // FNV-1a over the NIR and the first name seeds the generator.
    let seed = patient_ins(n)[..13]
        .bytes()
        .chain(given.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut r = Random(seed.max(1));
    let digits: String = (0..20).map(|i| char::from(b'0' + (r.next() % if i == 0 { 9 } else { 10 }) as u8 + u8::from(i == 0))).collect();
    let key = 97 - digits.parse::<u128>().expect("digits") % 97;
    format!("{digits}{key:02}")
}

/// Where [`identities_tsv`] goes, in the folder of generated documents.
pub const IDENTITIES_FILE: &str = "identities.tsv";

/// The INS each generated patient's INS-C belongs to, as the DMP learnt it when it moved to the
/// INS: one line per patient, `INS-C<TAB>INS<TAB>INS OID`, after a `#` header. The DMP
/// simulator reads it to index INS-C reports under the INS.
pub fn identities_tsv(patients: usize) -> String {
    let mut out = String::from("# INS-C\tINS\tINS OID\n");
    for n in 0..patients {
        out.push_str(&format!("{}\t{}\t{}\n", patient_ins_c(n), patient_ins(n), oid::INS_NIR_TEST));
    }
    out
}

/// The patient as a laboratory named them before the INS: by the INS-C (root
/// `1.2.250.1.213.1.4.2`), some laboratories adding the 13-digit NIR without its key. The NIR's
/// root is the NIR's own, `1.2.250.1.213.1.4.8`, even for these test patients whose INS is under
/// the test root: a laboratory of the time knew no test authority; 13 characters, no key, is
/// what says it is not an INS.
fn legacy_patient(n: usize, patient: &Patient, nir_beside: bool) -> Patient {
    let mut ids = vec![InstanceId { root: oid::INS_C[0].into(), extension: Some(patient_ins_c(n)) }];
    if nir_beside {
        ids.push(InstanceId { root: oid::INS_NIR.into(), extension: Some(patient_ins(n)[..13].to_string()) });
    }
    Patient { ids, ..patient.clone() }
}

/// The RPPS root OID and the national ids of the two attending GPs who prescribe the generated
/// reports: the first three patients see the first, the others the second.
pub const RPPS_ROOT: &str = "1.2.250.1.71.4.2.1";
pub const GENERATED_PRESCRIBERS: [(&str, &str, &str); 2] = [("810000000011", "DURAND", "Sophie"), ("810000000029", "LEFEBVRE", "Marc")];

/// One generated document: a file name and its report.
pub struct GeneratedDocument {
    pub file_name: String,
    pub patient: String,
    pub report: Report,
}

/// A morning sampling time on day `start_day + day` (days since 1970).
fn time_at(start_day: i64, day: i64) -> CdaTime {
    let (y, m, d) = crate::cda::civil_from_days(start_day + day);
    CdaTime {
        year: y as u16,
        month: Some(m),
        day: Some(d),
        hour: Some(7 + day.rem_euclid(3) as u8),
        minute: Some((day * 7).rem_euclid(60) as u8),
        second: None,
        offset_minutes: Some(60),
    }
}

fn decimal(v: f64, decimals: usize) -> Decimal {
    Decimal::parse(&format!("{v:.decimals$}")).expect("a formatted number")
}

/// Generates `patients` patients over `years` years, ending on `end` (days since 1970), every
/// report naming its patient by the INS (as if the INS had always existed).
pub fn generate(patients: usize, years: u32, seed: u64, end_day: i64) -> Vec<GeneratedDocument> {
    generate_with(patients, years, seed, end_day, false)
}

/// The same reports as [`generate`], with the identifiers of their time: the reports sampled
/// before [`INS_SWITCH_DAY`] name the patient by the INS-C ([`patient_ins_c`]), some with the
/// 13-digit NIR beside it; later ones by the INS. What `bioviewer demo-data` writes.
pub fn generate_with_legacy_identifiers(patients: usize, years: u32, seed: u64, end_day: i64) -> Vec<GeneratedDocument> {
    generate_with(patients, years, seed, end_day, true)
}

fn generate_with(patients: usize, years: u32, seed: u64, end_day: i64, legacy_identifiers: bool) -> Vec<GeneratedDocument> {
    let mut r = Random(seed.max(1));
    let mut out = Vec::new();
    let span = i64::from(years) * 365;
    for n in 0..patients {
        let story = STORIES[n % STORIES.len()];
        let (family, given, sex) = NAMES[n % NAMES.len()];
        let ins = test_ins(n, sex);
        let birth = time_at(end_day, -(365 * (40 + (n as i64 * 7) % 35)));
        let patient = Patient::with_id(
            oid::INS_NIR_TEST,
            &ins,
            PersonName { family: Some(family.into()), birth_family: Some(family.into()), given: vec![given.into()], prefix: None },
            Some(CdaTime { hour: None, minute: None, offset_minutes: None, ..birth }),
            Some(sex),
        );
        let (interval, tests) = story.plan();
        let home_lab = n % LABS.len();
        let (rpps, prescriber_family, prescriber_given) = GENERATED_PRESCRIBERS[usize::from(n >= 3)];
        let prescriber = crate::cda::Professional {
            id: Some(InstanceId { root: RPPS_ROOT.into(), extension: Some(rpps.into()) }),
            name: Some(PersonName {
                family: Some(prescriber_family.into()),
                birth_family: None,
                given: vec![prescriber_given.into()],
                prefix: Some("Dr".into()),
            }),
            ..Default::default()
        };
        // Last value each laboratory measured for each test (what it repeats as REFR).
        let mut previous: Vec<Vec<Option<(CdaTime, Value)>>> = vec![vec![None; TESTS.len()]; LABS.len()];
        let mut day = end_day - span + r.below(interval as usize) as i64;
        let mut visit = 0;
        while day <= end_day {
            let lab_index = if r.unit() < 0.8 { home_lab } else { r.below(LABS.len()) };
            let lab = &LABS[lab_index];
            let when = time_at(0, day);
            let progress = (day - (end_day - span)) as f64 / span as f64;
            let mut observations = Vec::new();
            for id in tests {
                let t = test_by_id(id);
                let ti = TESTS.iter().position(|x| x.id == t.id).expect("in the table");
                observations.extend(result(&mut r, story, lab, t, ti, (progress, visit), when, &mut previous[lab_index], observations.len()));
            }
            // Before the INS, the report knows the INS-C only (its ids too).
            let before_ins = legacy_identifiers && day < INS_SWITCH_DAY;
            let patient = if before_ins { legacy_patient(n, &patient, lab.nir_beside_ins_c) } else { patient.clone() };
            let set = format!("{}-{}-{visit}", if before_ins { patient_ins_c(n) } else { ins.clone() }, lab.finess);
            let partial = r.unit() < 0.1 && observations.len() > 2;
            let header = |version: u32, status: ReportStatus, at: CdaTime| Header {
                id: Some(InstanceId { root: "1.2.250.1.999.1".into(), extension: Some(format!("{set}.{version}")) }),
                set_id: Some(InstanceId { root: "1.2.250.1.999.1".into(), extension: Some(set.clone()) }),
                version_number: Some(version),
                effective_time: Some(at),
                status: Some(status),
                title: Some("Compte rendu d'examens de biologie médicale".into()),
                patient: Some(patient.clone()),
                laboratory: Some(Organization {
                    id: Some(InstanceId { root: oid::STRUCTURE.into(), extension: Some(lab.finess.into()) }),
                    name: Some(lab.name.into()),
                }),
                sampler: Some(crate::cda::Professional { time: Some(when), ..Default::default() }),
                prescriber: Some(prescriber.clone()),
                ..Header::default()
            };
            let later = CdaTime { hour: Some(18), ..when };
            let stem = format!("{}_{:04}-{:02}-{:02}_{}", ins, when.year, when.month.unwrap_or(1), when.day.unwrap_or(1), lab.finess);
            if partial {
                // A partial report with the first results, replaced the same evening by the complete one.
                let first: Vec<Observation> = observations.iter().filter(|o| o.previous_of.is_none()).take(2).cloned().collect();
                let first = reindex(first);
                out.push(GeneratedDocument {
                    file_name: format!("{stem}_v1.xml"),
                    patient: ins.clone(),
                    report: Report::structured(header(1, ReportStatus::Active, CdaTime { hour: Some(12), ..when }), first),
                });
                out.push(GeneratedDocument {
                    file_name: format!("{stem}_v2.xml"),
                    patient: ins.clone(),
                    report: Report::structured(
                        Header {
                            replaces: Some(InstanceId { root: "1.2.250.1.999.1".into(), extension: Some(format!("{set}.1")) }),
                            ..header(2, ReportStatus::Completed, later)
                        },
                        observations,
                    ),
                });
            } else {
                out.push(GeneratedDocument {
                    file_name: format!("{stem}_v1.xml"),
                    patient: ins.clone(),
                    report: Report::structured(header(1, ReportStatus::Completed, later), observations),
                });
            }
            visit += 1;
            day += interval + r.below((interval / 4).max(1) as usize) as i64 - interval / 8;
        }
    }
    out
}

fn reindex(observations: Vec<Observation>) -> Vec<Observation> {
    observations.into_iter().enumerate().map(|(index, o)| Observation { index, ..o }).collect()
}

fn chapter_of(id: &str) -> &'static str {
    match id {
        "haemoglobin" | "leukocytes" | "platelets" | "mcv" => "18723-7",
        "inr" => "18720-3",
        "urine_acr" => "18729-4",
        _ => "18719-5",
    }
}

/// The result of one test at one visit (and its previous result, as the laboratory repeats it).
#[allow(clippy::too_many_arguments)]
fn result(
    r: &mut Random,
    story: Story,
    lab: &Lab,
    t: &Test,
    test_index: usize,
    (progress, visit): (f64, usize),
    when: CdaTime,
    previous: &mut [Option<(CdaTime, Value)>],
    index: usize,
) -> Vec<Observation> {
    let molar = story.level(t.id, progress, visit, r);
    let mass = lab.mass_units && t.unit_mass != t.unit_molar;
    let (value, unit, decimals) =
        if mass { (molar * t.mass_per_molar, t.unit_mass, t.decimals + 1) } else { (molar, t.unit_molar, t.decimals) };
    let unit = match (t.unit_molar, lab.giga_per_litre) {
        ("10*9/L", true) => "G/L",
        _ => unit,
    };
    let scale = if mass { t.mass_per_molar } else { 1.0 };
    let code = match t.id {
        "tsh" if lab.tsh_alternative_code => {
            Code { code: Some("29575-8".into()), system: Some(oid::LOINC.into()), display: Some(t.label.into()), ..Code::default() }
        }
        "crp" if lab.local_crp.is_some() => Code {
            original_text: Some("CRP".into()),
            translations: vec![Code {
                code: Some("CRP01".into()),
                system: lab.local_crp.map(str::to_string),
                display: Some("Protéine C réactive".into()),
                ..Code::default()
            }],
            ..Code::default()
        },
        _ => Code {
            code: Some(if mass { t.code_mass } else { t.code_molar }.into()),
            system: Some(oid::LOINC.into()),
            display: Some(t.label.into()),
            ..Code::default()
        },
    };
    let aborted = r.unit() < 0.015;
    let value = if aborted {
        None
    } else if t.id == "crp" && value < 1.0 {
        // Below the limit of quantification.
        Some(Value::Censored { comparator: Comparator::Less, quantity: Quantity { value: decimal(1.0, 1), unit: Some(unit.into()) } })
    } else {
        Some(Value::Quantity(Quantity { value: decimal(value, decimals), unit: Some(unit.into()) }))
    };
    let high = t.high * lab.range_factor * scale;
    let low = t.low * scale;
    let bound = |v: f64| Quantity { value: decimal(v, decimals), unit: Some(unit.into()) };
    let flag = match &value {
        Some(Value::Quantity(q)) if q.value.to_f64() > high => Some("H"),
        Some(Value::Quantity(q)) if low > 0.0 && q.value.to_f64() < low => Some("L"),
        Some(Value::Quantity(_)) => Some("N"),
        _ => None,
    };
    let observation = Observation {
        index,
        previous_of: None,
        chapter: Some(Code { code: Some(chapter_of(t.id).into()), system: Some(oid::LOINC.into()), ..Code::default() }),
        sub_chapter: None,
        battery: None,
        isolate: None,
        code,
        status: if aborted { ResultStatus::Aborted } else { ResultStatus::Completed },
        value: value.clone(),
        interpretation: flag
            .map(|f| vec![Code { code: Some(f.into()), system: Some(oid::INTERPRETATION.into()), ..Code::default() }])
            .unwrap_or_default(),
        method: Some(Code { original_text: Some(lab.method.into()), ..Code::default() }),
        reference_ranges: vec![ReferenceRange {
            low: (low > 0.0).then(|| bound(low)),
            high: Some(bound(high)),
            text: None,
            precondition: None,
        }],
        effective_time: Some(CdaTime { hour: Some(12), ..when }),
        collection_time: None,
        collection_time_source: None,
        performer: None,
        performer_overridden: false,
        specimen: None,
        comments: Vec::new(),
    };
    let mut out = vec![observation.clone()];
    if let Some((t_prev, v_prev)) = previous[test_index].take() {
        out.push(Observation {
            index: index + 1,
            previous_of: Some(index),
            value: Some(v_prev),
            effective_time: Some(t_prev),
            interpretation: Vec::new(),
            reference_ranges: Vec::new(),
            status: ResultStatus::Completed,
            method: None,
            ..observation
        });
    }
    if let Some(v) = value {
        previous[test_index] = Some((when, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cda::writer::write_cr_bio;
    use crate::cda::{DocumentKind, parse};

    fn end() -> i64 {
        CdaTime::parse_hl7("20261101").unwrap().epoch_seconds() / 86_400
    }

    #[test]
    fn generated_histories_parse_and_are_deterministic() {
        let docs = generate(6, 10, 7, end());
        assert!(docs.len() > 200, "{} documents", docs.len());
        let again = generate(6, 10, 7, end());
        assert_eq!(docs.len(), again.len());
        assert_eq!(write_cr_bio(&docs[17].report), write_cr_bio(&again[17].report), "same seed, same documents");
        for d in docs.iter().step_by(7) {
            let parsed = parse(write_cr_bio(&d.report).as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", d.file_name));
            assert_eq!(parsed.kind, DocumentKind::CrBioStructured);
            assert_eq!(parsed.observations.len(), d.report.observations.len(), "{}", d.file_name);
            assert!(parsed.warnings.is_empty(), "{}: {:?}", d.file_name, parsed.warnings);
        }
        // The habits show: two TSH codes, G/L, a local CRP code, partial reports, REFR.
        let xml: String = docs.iter().map(|d| write_cr_bio(&d.report)).collect();
        for needle in [
            "29575-8",
            "3016-3",
            "unit=\"G/L\"",
            "CRP01",
            "lab:statusCode code=\"active\"",
            "typeCode=\"REFR\"",
            "g/L",
            "mmol/L",
            "aborted",
        ] {
            assert!(xml.contains(needle), "no {needle}");
        }
    }

    #[test]
    fn the_ins_switch_day_is_the_first_of_january_2021() {
        assert_eq!(crate::cda::civil_from_days(INS_SWITCH_DAY), (2021, 1, 1));
    }

    #[test]
    fn patient_ins_c_is_22_digits_with_its_key_stable_and_distinct() {
        let all: Vec<String> = (0..8).map(patient_ins_c).collect();
        for ins_c in &all {
            assert_eq!(ins_c.len(), 22, "{ins_c}");
            assert!(ins_c.bytes().all(|b| b.is_ascii_digit()) && !ins_c.starts_with('0'), "{ins_c}");
            let number: u128 = ins_c[..20].parse().unwrap();
            assert_eq!(97 - number % 97, ins_c[20..].parse::<u128>().unwrap(), "{ins_c}");
        }
        assert_eq!(all, (0..8).map(patient_ins_c).collect::<Vec<_>>(), "deterministic");
        assert_eq!(all.iter().collect::<std::collections::BTreeSet<_>>().len(), all.len(), "one per patient");
        let tsv = identities_tsv(2);
        assert_eq!(tsv.lines().nth(1), Some(format!("{}\t{}\t{}", patient_ins_c(0), patient_ins(0), oid::INS_NIR_TEST).as_str()));
    }

    #[test]
    fn a_decade_crossing_2021_names_the_patient_by_ins_c_before_and_by_ins_after() {
        let plain = generate(3, 10, 7, end());
        let legacy = generate_with_legacy_identifiers(3, 10, 7, end());
        assert_eq!(plain.len(), legacy.len(), "the same reports, only the identifiers differ");
        let (mut before, mut after, mut with_nir) = (0, 0, 0);
        for (p, d) in plain.iter().zip(&legacy) {
            assert_eq!(p.report.observations, d.report.observations);
            let n = (0..3).find(|n| patient_ins(*n) == d.patient).unwrap();
            let parsed = parse(write_cr_bio(&d.report).as_bytes()).unwrap();
            let ids = &parsed.header.patient.as_ref().unwrap().ids;
            let day = parsed.header.effective_time.unwrap().epoch_seconds().div_euclid(86_400);
            let has = |root: &str, extension: &str| ids.iter().any(|id| id.root == root && id.extension.as_deref() == Some(extension));
            if day < INS_SWITCH_DAY {
                before += 1;
                assert!(has(oid::INS_C[0], &patient_ins_c(n)), "{}: {ids:?}", d.file_name);
                assert!(!ids.iter().any(|id| id.root == oid::INS_NIR_TEST), "no INS before 2021: {ids:?}");
                if has(oid::INS_NIR, &patient_ins(n)[..13]) {
                    with_nir += 1;
                }
                assert!(!write_cr_bio(&d.report).contains(&patient_ins(n)), "the INS appears nowhere in an INS-C report");
            } else {
                after += 1;
                assert_eq!(ids.len(), 1);
                assert!(has(oid::INS_NIR_TEST, &patient_ins(n)), "{ids:?}");
            }
        }
        assert!(before > 0 && after > 0, "the decade crosses the switch: {before} before, {after} after");
        assert!(with_nir > 0 && with_nir < before, "some INS-C reports carry the NIR beside it: {with_nir} of {before}");
        // The default generation stays INS-only (tests that normalise every report rely on it).
        let xml: String = plain.iter().map(|d| write_cr_bio(&d.report)).collect();
        assert!(!xml.contains(oid::INS_C[0]));
    }

    #[test]
    fn test_ins_keys_are_valid() {
        for n in 0..50 {
            let ins = test_ins(n, if n % 2 == 0 { Sex::Female } else { Sex::Male });
            assert_eq!(ins.len(), 15);
            let number: u64 = ins[..13].parse().unwrap();
            let key: u64 = ins[13..].parse().unwrap();
            assert_eq!(97 - number % 97, key, "{ins}");
        }
    }
}
