-- Why a document could not be read, as a code the interface translates
-- (`kind:line:column`, e.g. `truncated:120:4`); `parse_error` keeps the parser's English words
-- for logs and the command line.
ALTER TABLE documents ADD COLUMN parse_error_code TEXT;
