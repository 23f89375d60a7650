//! Plainer words for patients reading their own results: what a test measures, and what a
//! flag or a change means, without the clinician's shorthand.
//!
//! Descriptions exist for the common tests of a routine check-up; a test without one shows its
//! name only (never a guessed explanation).

use crate::i18n::Lang;

/// What the test measures, in one sentence a patient understands.
pub fn analyte_description(analyte: &str, lang: Lang) -> Option<&'static str> {
    let (fr, en) = match analyte {
        "haemoglobin" => (
            "Le pigment des globules rouges qui transporte l'oxygène ; bas, il signale une anémie.",
            "The red-cell pigment that carries oxygen; low, it signals anaemia.",
        ),
        "leukocytes" => (
            "Les globules blancs, qui défendent l'organisme contre les infections.",
            "White blood cells, which defend the body against infection.",
        ),
        "platelets" => ("Les plaquettes, qui font coaguler le sang.", "Platelets, which make blood clot."),
        "mcv" => ("La taille moyenne des globules rouges.", "The average size of red blood cells."),
        "erythrocytes" => ("Le nombre de globules rouges.", "The number of red blood cells."),
        "neutrophils" => ("Les globules blancs qui combattent surtout les bactéries.", "The white cells that mostly fight bacteria."),
        "lymphocytes" => ("Les globules blancs de l'immunité (virus, anticorps).", "The white cells of immunity (viruses, antibodies)."),
        "inr" => (
            "Le temps de coagulation sous anticoagulant (AVK), comparé à la normale ; votre médecin vous fixe une cible.",
            "Clotting time on an anticoagulant (vitamin K antagonist), compared with normal; your doctor sets your target.",
        ),
        "sodium" => {
            ("Le sel du sang ; il reflète l'équilibre en eau de l'organisme.", "Salt in the blood; it reflects the body's water balance.")
        }
        "potassium" => ("Un sel minéral indispensable au cœur et aux muscles.", "A mineral salt the heart and muscles need."),
        "calcium" => {
            ("Le calcium du sang, lié aux os, aux muscles et aux nerfs.", "Calcium in the blood, linked to bones, muscles and nerves.")
        }
        "urea" => ("Un déchet des protéines éliminé par les reins.", "A waste product of proteins, removed by the kidneys."),
        "creatinine" => (
            "Un déchet des muscles éliminé par les reins ; il monte quand les reins filtrent moins bien.",
            "A muscle waste product removed by the kidneys; it rises when the kidneys filter less well.",
        ),
        "egfr_ckd_epi_2021" | "egfr_ckd_epi_2009" | "egfr_mdrd" => (
            "Une estimation de la capacité de filtration des reins, calculée à partir de la créatinine ; plus elle est haute, mieux les reins filtrent.",
            "An estimate of how well the kidneys filter, computed from creatinine; the higher, the better.",
        ),
        "urate" => ("L'acide urique, en excès dans la goutte.", "Uric acid, in excess in gout."),
        "glucose_fasting" | "glucose" => {
            ("Le sucre dans le sang au moment de la prise de sang.", "Sugar in the blood at the time of the test.")
        }
        "hba1c" => (
            "Le reflet de votre taux de sucre moyen des 2 à 3 derniers mois ; le suivi clé du diabète.",
            "Your average blood sugar over the last 2 to 3 months; the key test in diabetes.",
        ),
        "alt" | "ast" => (
            "Une enzyme du foie ; elle monte quand les cellules du foie souffrent.",
            "A liver enzyme; it rises when liver cells are strained.",
        ),
        "ggt" => (
            "Une enzyme du foie et des voies biliaires, sensible à l'alcool et à certains médicaments.",
            "A liver and bile-duct enzyme, sensitive to alcohol and some medicines.",
        ),
        "alp" => ("Une enzyme du foie et des os.", "An enzyme of the liver and bones."),
        "bilirubin_total" => (
            "Un pigment issu des globules rouges usés, éliminé par le foie ; en excès, il donne la jaunisse.",
            "A pigment from worn-out red cells, cleared by the liver; in excess it causes jaundice.",
        ),
        "albumin" => (
            "La principale protéine du sang, reflet de la nutrition et du foie.",
            "The main blood protein, reflecting nutrition and the liver.",
        ),
        "cholesterol_total" => ("Le cholestérol total du sang.", "Total cholesterol in the blood."),
        "ldl" => {
            ("Le « mauvais » cholestérol, qui se dépose dans les artères.", "The \"bad\" cholesterol, which builds up in the arteries.")
        }
        "hdl" => ("Le « bon » cholestérol, qui protège les artères.", "The \"good\" cholesterol, which protects the arteries."),
        "non_hdl" => ("Le cholestérol total moins le « bon » cholestérol.", "Total cholesterol minus the \"good\" cholesterol."),
        "triglycerides" => {
            ("Les graisses du sang, sensibles au sucre, à l'alcool et aux repas.", "Blood fats, sensitive to sugar, alcohol and meals.")
        }
        "tsh" => (
            "L'hormone qui commande la thyroïde ; haute quand la thyroïde fonctionne trop peu, basse quand elle fonctionne trop.",
            "The hormone that drives the thyroid; high when the thyroid works too little, low when it works too much.",
        ),
        "ft4" | "ft3" => ("Une hormone produite par la thyroïde.", "A hormone made by the thyroid."),
        "ferritin" => ("Les réserves de fer de l'organisme.", "The body's iron stores."),
        "iron" => ("Le fer circulant dans le sang.", "Iron circulating in the blood."),
        "transferrin_saturation" => {
            ("La part du transporteur de fer qui en est chargée.", "How much of the iron carrier is loaded with iron.")
        }
        "crp" => ("Un marqueur d'inflammation ou d'infection.", "A marker of inflammation or infection."),
        "urine_acr" => (
            "L'albumine dans les urines rapportée à la créatinine ; elle signale tôt une atteinte des reins.",
            "Albumin in the urine relative to creatinine; an early sign of kidney damage.",
        ),
        "vitamin_d" => ("La vitamine D, utile aux os.", "Vitamin D, needed for the bones."),
        "vitamin_b12" => ("La vitamine B12, nécessaire aux globules rouges et aux nerfs.", "Vitamin B12, needed for red cells and nerves."),
        "folate" => ("Les folates (vitamine B9), nécessaires aux globules rouges.", "Folate (vitamin B9), needed for red cells."),
        "psa" => ("Une protéine produite par la prostate.", "A protein made by the prostate."),
        _ => return None,
    };
    Some(match lang {
        Lang::Fr => fr,
        Lang::En => en,
    })
}

/// A laboratory flag in plain words.
pub fn flag_words(code: &str, lang: Lang) -> &'static str {
    let (fr, en) = match code {
        "N" | "NEG" | "S" => ("Dans les valeurs habituelles", "Within the usual range"),
        "H" | "HH" | "HU" => ("Au-dessus des valeurs habituelles", "Above the usual range"),
        "L" | "LL" | "LU" => ("En dessous des valeurs habituelles", "Below the usual range"),
        _ => ("En dehors des valeurs habituelles", "Outside the usual range"),
    };
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_tests_are_explained_in_both_languages() {
        for id in ["haemoglobin", "creatinine", "egfr_ckd_epi_2021", "hba1c", "tsh", "ldl", "inr", "ferritin"] {
            let (fr, en) = (analyte_description(id, Lang::Fr).unwrap(), analyte_description(id, Lang::En).unwrap());
            assert_ne!(fr, en, "{id}");
        }
        assert_eq!(analyte_description("anti_tpo", Lang::Fr), None, "no guessed explanation");
    }

    #[test]
    fn flags_read_as_plain_words() {
        assert_eq!(flag_words("H", Lang::Fr), "Au-dessus des valeurs habituelles");
        assert_eq!(flag_words("L", Lang::En), "Below the usual range");
        assert_eq!(flag_words("N", Lang::Fr), "Dans les valeurs habituelles");
        assert_eq!(flag_words("A", Lang::En), "Outside the usual range");
    }
}
