-- A patient has one or more identifiers (issue 14): the INS when known, the INS-C of the years
-- before 2021, a NIR written without its key, a laboratory's local id. Each belongs to one
-- record, with where it was learned. patients.(ins_root, ins) stays the record's key: its INS,
-- or for a record known by no INS, the identifier it was created under ("no INS").
CREATE TABLE patient_identifiers (
    authority    TEXT NOT NULL,                  -- OID
    value        TEXT NOT NULL,
    patient_id   TEXT NOT NULL REFERENCES patients (id),
    kind         TEXT NOT NULL,                  -- ins | ins_c | nir_without_key | local
    learned_from TEXT NOT NULL,                  -- dmp | document | operator | clinician
    first_seen   TEXT NOT NULL,
    PRIMARY KEY (authority, value)
) STRICT;
CREATE INDEX patient_identifiers_by_patient ON patient_identifiers (patient_id);
INSERT OR IGNORE INTO patient_identifiers (authority, value, patient_id, kind, learned_from, first_seen)
    SELECT ins_root, ins, id, 'ins', 'document', created_at FROM patients;

-- Two records of one person (an INS record and an INS-C record), joined by an explicit,
-- audited, reversible link: each record's history shows both sets of documents.
CREATE TABLE patient_links (
    id          TEXT PRIMARY KEY NOT NULL,
    patient_a   TEXT NOT NULL REFERENCES patients (id),
    patient_b   TEXT NOT NULL REFERENCES patients (id),
    linked_by   TEXT,                            -- account id; NULL: the operator
    linked_at   TEXT NOT NULL,
    unlinked_by TEXT,
    unlinked_at TEXT,
    CHECK (patient_a <> patient_b)
) STRICT;
CREATE INDEX patient_links_a ON patient_links (patient_a) WHERE unlinked_at IS NULL;
CREATE INDEX patient_links_b ON patient_links (patient_b) WHERE unlinked_at IS NULL;
