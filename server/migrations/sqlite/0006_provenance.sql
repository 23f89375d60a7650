-- Trust boundaries (issue 12): what a document says is never a right; the channel it came
-- through decides what it may do.
--
-- documents.source: dmp | operator | upload. Before this migration 'file' meant either the
-- operator's `bioviewer import` or the upload form, which cannot be told apart now: such
-- documents count as the operator's.
UPDATE documents SET source = 'operator' WHERE source = 'file';
-- The uploader's account (source 'upload').
ALTER TABLE documents ADD COLUMN uploaded_by TEXT;
-- The DMP registry entry the document was retrieved for (source 'dmp').
ALTER TABLE documents ADD COLUMN dmp_entry TEXT;
CREATE INDEX documents_by_patient_source ON documents (patient_id, source);

-- Where the patient's identity (names, birth date, sex) was learned: it changes only for a
-- more trusted source, never because a later or an uploaded document says otherwise.
ALTER TABLE patients ADD COLUMN identity_source TEXT NOT NULL DEFAULT 'operator';
CREATE INDEX patients_by_ins_number ON patients (ins);

-- One professional national id, one account: the id is what prescriber access and the VIHF
-- rest on.
CREATE UNIQUE INDEX accounts_by_rpps ON accounts (rpps) WHERE rpps IS NOT NULL;

-- What the operator must look at about a patient's identity: a document naming the patient's
-- INS number under another INS authority (a test OID beside a production one), or with
-- another birth date or sex, or an identity set again by a more trusted source. Ids, OIDs and
-- field names only: never names or dates.
CREATE TABLE identity_alerts (
    id          TEXT PRIMARY KEY NOT NULL,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    document_id TEXT REFERENCES documents (id),
    kind        TEXT NOT NULL,        -- ins_authority | identity_conflict | identity_replaced
    detail      TEXT,
    at          TEXT NOT NULL
) STRICT;
CREATE INDEX identity_alerts_by_patient ON identity_alerts (patient_id);
