-- A DMP sync asks which uniqueIds (CDA ids) are stored already.
CREATE INDEX documents_by_cda_id ON documents (cda_id);
