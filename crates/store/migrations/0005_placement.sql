-- Why each attempt of a job went where it went: the placement decision
-- (filters, scores, estimates) as JSON, appended per attempt, for
-- `proofmesh explain JOB_ID`.
ALTER TABLE jobs ADD COLUMN placement_json TEXT NOT NULL DEFAULT '[]';
