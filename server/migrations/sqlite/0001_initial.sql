-- Patients are keyed by their national identifier (INS + the OID saying which kind).
CREATE TABLE patients (
    id          TEXT PRIMARY KEY NOT NULL,           -- Bioviewer's UUID
    ins_root    TEXT NOT NULL,
    ins         TEXT NOT NULL,
    family_name TEXT,
    given_names TEXT,
    birth_date  TEXT,                                -- ISO, at the document's precision
    sex         TEXT,                                -- female | male | undetermined
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (ins_root, ins)
) STRICT;

-- Every source document as received, indexed by what its header says. A document that could not
-- be parsed is kept too (kind NULL, parse_error set) so nothing is lost and a parser fix can
-- re-import it.
CREATE TABLE documents (
    id              TEXT PRIMARY KEY NOT NULL,
    patient_id      TEXT REFERENCES patients (id),
    content_sha256  TEXT NOT NULL UNIQUE,
    size_bytes      INTEGER NOT NULL,
    source          TEXT NOT NULL,                   -- file | dmp
    source_name     TEXT,
    cda_id          TEXT,
    set_id          TEXT,
    version_number  INTEGER,
    kind            TEXT,
    report_status   TEXT,
    title           TEXT,
    laboratory      TEXT,
    effective_time  TEXT,
    effective_epoch INTEGER,
    parse_error     TEXT,
    imported_at     TEXT NOT NULL
) STRICT;

CREATE INDEX documents_by_patient ON documents (patient_id, effective_epoch DESC);
CREATE INDEX documents_by_set ON documents (set_id, version_number);

-- Raw bytes apart from the index, so listing documents never reads megabytes of PDF.
CREATE TABLE document_contents (
    document_id TEXT PRIMARY KEY NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    raw         BLOB NOT NULL
) STRICT;
