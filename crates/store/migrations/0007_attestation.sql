-- Hardware attestation (issue 5): an API key may require attested
-- providers ("tee" or "tee+gpu"; NULL = no requirement), and the latest
-- verified attestation of each provider is kept for operators.
ALTER TABLE api_keys ADD COLUMN min_attestation TEXT;
ALTER TABLE providers ADD COLUMN attestation_json TEXT;
