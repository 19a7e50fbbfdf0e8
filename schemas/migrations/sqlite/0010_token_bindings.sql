-- Identities bound to tokens. A token names who it may act as: the agent
-- ids and runner ids (JSON arrays of exact ids or prefixes ending in `*`)
-- and its subject, the person or service behind it; it may expire. NULL in
-- these columns (tokens minted before them) reads as the default a token
-- minted without them gets: the id equal to its name, and the subject
-- `token-name:<name>`.
ALTER TABLE tokens ADD COLUMN subject TEXT;
ALTER TABLE tokens ADD COLUMN agent_ids TEXT;
ALTER TABLE tokens ADD COLUMN runner_ids TEXT;
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;

-- Who started an execution (or a workflow run), and every subject whose
-- agent token has held it: none of them may review its steps.
ALTER TABLE kernel_executions ADD COLUMN initiator_subject TEXT NOT NULL DEFAULT '';
ALTER TABLE kernel_executions ADD COLUMN agent_subjects TEXT NOT NULL DEFAULT '[]';
ALTER TABLE workflow_runs ADD COLUMN initiator_subject TEXT NOT NULL DEFAULT '';
UPDATE kernel_executions SET initiator_subject = COALESCE(
    (SELECT 'token-name:' || t.name FROM tokens t WHERE t.id = kernel_executions.initiator_token),
    'token:' || initiator_token);
UPDATE workflow_runs SET initiator_subject = COALESCE(
    (SELECT 'token-name:' || t.name FROM tokens t WHERE t.id = workflow_runs.initiator_token),
    'token:' || initiator_token);

-- The token a remote step's job was dispatched to: only it reports the result.
ALTER TABLE kernel_steps ADD COLUMN runner_token TEXT;

-- Verdicts count once per subject. Verdicts given before subjects existed
-- counted per token, and keep doing so (their subject names their token).
ALTER TABLE kernel_approvals ADD COLUMN subject TEXT NOT NULL DEFAULT '';
UPDATE kernel_approvals SET subject = 'token:' || reviewer_token;
CREATE UNIQUE INDEX kernel_approvals_subject ON kernel_approvals (step_id, subject);

-- The token a runner id's tool declarations belong to (NULL: the next
-- token to declare them).
ALTER TABLE kernel_runners ADD COLUMN token_id TEXT;
