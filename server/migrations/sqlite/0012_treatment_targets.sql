-- Treatment targets (issue 15): a clinician sets, per patient and analyte, the range a result
-- is judged against instead of the laboratory's (INR 2-3 under a vitamin K antagonist, HbA1c
-- below 7 %). One bound or two, as typed (decimal literals, never re-typed), in the unit the
-- analyte was shown in. A change ends the current row and adds a new one: who set each target
-- and when stays readable; the current target is the row not ended.
CREATE TABLE treatment_targets (
    id          TEXT PRIMARY KEY NOT NULL,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    analyte     TEXT NOT NULL,                   -- the catalogue's analyte id
    low         TEXT,                            -- decimal literal; NULL: open
    high        TEXT,
    unit        TEXT,                            -- UCUM, the analyte's display unit
    set_by      TEXT NOT NULL REFERENCES accounts (id),
    set_at      TEXT NOT NULL,
    ended_by    TEXT REFERENCES accounts (id),
    ended_at    TEXT,
    CHECK (low IS NOT NULL OR high IS NOT NULL)
) STRICT;
CREATE UNIQUE INDEX treatment_targets_current ON treatment_targets (patient_id, analyte) WHERE ended_at IS NULL;
