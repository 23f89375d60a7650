-- An emergency access by a regulation physician of a centre 15 (SAMU): the DMP's `centre_15`
-- access mode, beside break-the-glass (`bris_de_glace`).
ALTER TABLE break_glass ADD COLUMN regulation INTEGER NOT NULL DEFAULT 0;
