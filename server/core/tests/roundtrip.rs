//! Property test: a random report written as a CR-BIO document parses back to the same report.

use bioviewer_core::cda::writer::write_cr_bio;
use bioviewer_core::cda::*;
use proptest::prelude::*;

fn words() -> impl Strategy<Value = String> {
    // Accents, XML specials and punctuation, whitespace already collapsed as the parser returns it.
    prop::collection::vec("[A-Za-zéèàçôÉ0-9<>&'\"%/().+-]{1,8}", 1..5).prop_map(|w| w.join(" "))
}

fn decimal() -> impl Strategy<Value = Decimal> {
    (0u64..10_000_000, 0usize..4, any::<bool>()).prop_map(|(n, scale, negative)| {
        let digits = format!("{n:0width$}", width = scale + 1);
        let (int, frac) = digits.split_at(digits.len() - scale);
        let literal = if scale == 0 { int.to_string() } else { format!("{int}.{frac}") };
        Decimal::parse(&if negative && n != 0 { format!("-{literal}") } else { literal }).unwrap()
    })
}

fn quantity() -> impl Strategy<Value = Quantity> {
    (decimal(), prop::option::of(prop::sample::select(vec!["mmol/L", "g/L", "10*9/L", "m[IU]/L", "%", "µmol/L", "G/L", "mg/dL"])))
        .prop_map(|(value, unit)| Quantity { value, unit: unit.map(str::to_string) })
}

fn loinc() -> impl Strategy<Value = Code> {
    ("[1-9][0-9]{0,4}-[0-9]", prop::option::of(words())).prop_map(|(code, display)| Code {
        code: Some(code),
        system: Some(oid::LOINC.into()),
        display,
        ..Code::default()
    })
}

fn time() -> impl Strategy<Value = CdaTime> {
    (1990u16..2030, 1u8..=12, 1u8..=28, 0u8..24, 0u8..60, prop::sample::select(vec![0i16, 60, 120, -300])).prop_map(
        |(year, month, day, hour, minute, offset)| CdaTime {
            year,
            month: Some(month),
            day: Some(day),
            hour: Some(hour),
            minute: Some(minute),
            second: None,
            offset_minutes: Some(offset),
        },
    )
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        quantity().prop_map(Value::Quantity),
        (
            prop::sample::select(vec![Comparator::Less, Comparator::LessOrEqual, Comparator::Greater, Comparator::GreaterOrEqual]),
            quantity()
        )
            .prop_map(|(comparator, quantity)| Value::Censored { comparator, quantity }),
        (quantity(), quantity()).prop_map(|(l, h)| Value::Interval { low: Some(l), high: Some(h) }),
        decimal().prop_map(|value| Value::Real { value }),
        (-100_000i64..100_000).prop_map(|value| Value::Integer { value }),
        ("[0-9]{6,9}", words(), prop::option::of(words())).prop_map(|(code, display, original_text)| Value::Coded(Code {
            code: Some(code),
            system: Some(oid::SNOMED_CT.into()),
            display: Some(display),
            original_text,
            ..Code::default()
        })),
        words().prop_map(|text| Value::Text { text }),
        time().prop_map(|time| Value::Time { time }),
        (quantity(), quantity()).prop_map(|(numerator, denominator)| Value::Ratio { numerator, denominator }),
        prop::sample::select(vec!["NA", "UNK", "NI"]).prop_map(|f| Value::Null { flavor: f.to_string() }),
    ]
}

fn flag() -> impl Strategy<Value = Code> {
    prop::sample::select(vec!["N", "L", "H", "LL", "HH", "A", "POS", "NEG", "S", "R"]).prop_map(|c| Code {
        code: Some(c.into()),
        system: Some(oid::INTERPRETATION.into()),
        ..Code::default()
    })
}

fn range() -> impl Strategy<Value = ReferenceRange> {
    (prop::option::of(quantity()), prop::option::of(quantity()), prop::option::of(words()))
        .prop_filter("a range has a bound", |(l, h, _)| l.is_some() || h.is_some())
        .prop_map(|(low, high, precondition)| ReferenceRange { low, high, text: None, precondition })
}

/// A result without its context (filled in by `report`).
#[derive(Debug, Clone)]
struct Draft {
    code: Code,
    aborted: bool,
    value: Option<Value>,
    flags: Vec<Code>,
    method: Option<Code>,
    ranges: Vec<ReferenceRange>,
    time: CdaTime,
    comments: Vec<String>,
    subcontractor: Option<Organization>,
    previous: Vec<(CdaTime, Value)>,
}

fn draft() -> impl Strategy<Value = Draft> {
    (
        loinc(),
        any::<bool>(),
        prop::option::of(value()),
        prop::collection::vec(flag(), 0..2),
        prop::option::of(words().prop_map(|t| Code { original_text: Some(t), ..Code::default() })),
        prop::collection::vec(range(), 0..2),
        time(),
        prop::collection::vec(words(), 0..2),
        prop::option::of(words().prop_map(|n| Organization { id: None, name: Some(n) })),
        prop::collection::vec((time(), value()), 0..3),
    )
        .prop_map(|(code, aborted, value, flags, method, ranges, time, comments, subcontractor, previous)| Draft {
            code,
            aborted,
            value,
            flags,
            method,
            ranges,
            time,
            comments,
            subcontractor,
            previous,
        })
}

#[derive(Debug, Clone)]
struct Group {
    battery: Option<Code>,
    organism: Option<Code>,
    drafts: Vec<Draft>,
}

fn group() -> impl Strategy<Value = Group> {
    (
        prop::option::of(loinc()),
        prop::option::of("[0-9]{6,9}".prop_map(|c| Code { code: Some(c), system: Some(oid::SNOMED_CT.into()), ..Code::default() })),
        prop::collection::vec(draft(), 1..4),
    )
        .prop_map(|(battery, organism, drafts)| Group { battery, organism, drafts })
}

fn report() -> impl Strategy<Value = Report> {
    let chapters = prop::sample::subsequence(vec!["18719-5", "18723-7", "18720-3", "18725-2", "18729-4"], 1..4);
    (chapters, prop::collection::vec((any::<bool>(), prop::collection::vec(group(), 1..3)), 4), time(), 1u32..5, words()).prop_map(
        |(chapters, chapter_groups, effective, version, lab_name)| {
            let laboratory = Organization {
                id: Some(InstanceId { root: oid::STRUCTURE.into(), extension: Some("1120459876".into()) }),
                name: Some(lab_name),
            };
            let mut observations: Vec<Observation> = Vec::new();
            for (chapter, (has_sub, groups)) in chapters.iter().zip(chapter_groups) {
                let chapter = Code { code: Some(chapter.to_string()), system: Some(oid::LOINC.into()), ..Code::default() };
                let sub = has_sub.then(|| Code { code: Some("24317-0".into()), system: Some(oid::LOINC.into()), ..Code::default() });
                for g in groups {
                    for d in g.drafts {
                        let index = observations.len();
                        let base = Observation {
                            index,
                            previous_of: None,
                            chapter: Some(chapter.clone()),
                            sub_chapter: sub.clone(),
                            battery: g.battery.clone(),
                            isolate: g.organism.clone().map(|organism| Isolate { organism }),
                            code: d.code.clone(),
                            status: if d.aborted { ResultStatus::Aborted } else { ResultStatus::Completed },
                            value: d.value.clone(),
                            interpretation: d.flags.clone(),
                            method: d.method.clone(),
                            reference_ranges: d.ranges.clone(),
                            effective_time: Some(d.time),
                            collection_time: None,
                            collection_time_source: None,
                            performer: Some(d.subcontractor.clone().unwrap_or_else(|| laboratory.clone())),
                            performer_overridden: d.subcontractor.is_some(),
                            specimen: None,
                            comments: d.comments.clone(),
                        };
                        observations.push(base.clone());
                        for (time, value) in d.previous {
                            let index = observations.len();
                            observations.push(Observation {
                                index,
                                previous_of: Some(base.index),
                                value: Some(value),
                                effective_time: Some(time),
                                interpretation: Vec::new(),
                                method: None,
                                reference_ranges: Vec::new(),
                                comments: Vec::new(),
                                status: ResultStatus::Completed,
                                ..base.clone()
                            });
                        }
                    }
                }
            }
            Report::structured(
                Header {
                    id: Some(InstanceId { root: "1.2.250.1.999.1".into(), extension: Some(format!("doc{version}")) }),
                    set_id: Some(InstanceId { root: "1.2.250.1.999.2".into(), extension: Some("set".into()) }),
                    version_number: Some(version),
                    effective_time: Some(effective),
                    status: Some(if version % 2 == 0 { ReportStatus::Active } else { ReportStatus::Completed }),
                    laboratory: Some(laboratory),
                    title: Some("Compte rendu d'examens biologiques".into()),
                    patient: Some(Patient::with_id(
                        oid::INS_NIR_TEST,
                        "279035121518989",
                        PersonName {
                            family: Some("PAT-TROIS".into()),
                            birth_family: Some("PAT-TROIS".into()),
                            given: vec!["DOMINIQUE".into()],
                            prefix: None,
                        },
                        CdaTime::parse_hl7("19790328").ok(),
                        Some(Sex::Female),
                    )),
                    ..Header::default()
                },
                observations,
            )
        },
    )
}

/// What the parser must give back exactly (derived fields such as collection time are checked
/// by the corpus and unit tests).
fn projection(o: &Observation) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        (o.index, o.previous_of, o.chapter.as_ref().map(|c| &c.code), o.sub_chapter.as_ref().map(|c| &c.code)),
        (o.battery.as_ref().map(|b| (&b.code, &b.display)), o.isolate.as_ref().map(|i| &i.organism.code)),
        (&o.code, &o.status, &o.value, &o.interpretation, &o.method, &o.reference_ranges),
        (&o.effective_time, &o.performer, o.performer_overridden, &o.comments),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn parsing_a_written_report_gives_it_back(report in report()) {
        let xml = write_cr_bio(&report);
        let parsed = parse(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(parsed.kind, DocumentKind::CrBioStructured);
        let (h, p) = (&report.header, &parsed.header);
        prop_assert_eq!((&p.id, &p.set_id, p.version_number, p.status), (&h.id, &h.set_id, h.version_number, h.status));
        prop_assert_eq!((&p.effective_time, &p.laboratory, &p.title, &p.patient), (&h.effective_time, &h.laboratory, &h.title, &h.patient));
        prop_assert_eq!(parsed.observations.len(), report.observations.len());
        for (got, want) in parsed.observations.iter().zip(&report.observations) {
            prop_assert_eq!(projection(got), projection(want));
        }
        prop_assert!(parsed.warnings.is_empty(), "warnings: {:?}", parsed.warnings);
    }
}
