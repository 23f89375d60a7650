-- The audit chain becomes keyed (HMAC-SHA256 under a key kept outside the database, see
-- server/src/access/audit.rs). Records written before stay as they were, plain SHA-256, and stay
-- verifiable: `scheme` says how each record's hash was computed. Adding a column is not an
-- UPDATE: the append-only triggers do not fire, and existing rows take the default.
ALTER TABLE audit_events ADD COLUMN scheme TEXT NOT NULL DEFAULT 'sha256';

-- The patient's access log pages through genuine accesses and groups refusals by account.
CREATE INDEX audit_by_patient_mode ON audit_events (patient_id, mode, seq);
-- Alarms on the administration page.
CREATE INDEX audit_by_action ON audit_events (action, seq);
