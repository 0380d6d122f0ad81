-- Churn risk (src/domain/churn.rs): per workspace and population ('customers': the workspace's
-- own end users by their events' user ids; 'platform': the platform's workspaces, kept under the
-- system tenant and read by operators only), the trained model, the latest scores, and the
-- scheduler's claim.

-- The latest training of a population: the model (standardization and coefficients) with its
-- held-out quality, or the counts that were too few for one.
CREATE TABLE churn_models (
    tenant_id        uuid        NOT NULL,
    population       text        NOT NULL CHECK (population IN ('customers', 'platform')),
    status           text        NOT NULL CHECK (status IN ('trained', 'not_enough_data')),
    trained_at       timestamptz NOT NULL,
    observation_days integer     NOT NULL,
    outcome_days     integer     NOT NULL,
    subjects         bigint      NOT NULL,
    churned          bigint      NOT NULL,
    -- domain::churn::Model; null when not_enough_data.
    model            jsonb,
    -- domain::churn::Quality (AUC, Brier, reliability bins, split sizes); null when not_enough_data.
    quality          jsonb,
    -- domain::churn::Shortfall; null when trained.
    shortfall        jsonb,
    CHECK ((status = 'trained') = (model IS NOT NULL AND quality IS NOT NULL)),
    PRIMARY KEY (tenant_id, population)
);
SELECT enable_tenant_table('churn_models');

-- The latest score of each subject with its top factors. Replaced as a whole by each scoring
-- run (delete + insert): `high` carries over so churn_risk.high is emitted once per crossing.
CREATE TABLE churn_scores (
    tenant_id  uuid             NOT NULL,
    population text             NOT NULL CHECK (population IN ('customers', 'platform')),
    subject    text             NOT NULL,
    score      double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    high       boolean          NOT NULL,
    factors    jsonb            NOT NULL,
    scored_at  timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id, population, subject)
);
-- Highest risk first, keyset-paged by (score, subject).
CREATE INDEX churn_scores_rank ON churn_scores (tenant_id, population, score DESC, subject);
SELECT enable_tenant_table('churn_scores');
-- Derived figures rewritten daily (thousands of rows): the model row is the audited record of a
-- run; an edit of a stored score still is audited.
DROP TRIGGER audit_row ON churn_scores;
CREATE TRIGGER audit_row AFTER UPDATE ON churn_scores FOR EACH ROW EXECUTE FUNCTION audit_row();

-- When each population is next due and which replica holds it (a lease, claimed with SKIP
-- LOCKED), so only one replica trains or scores a workspace at a time.
CREATE TABLE churn_jobs (
    tenant_id   uuid        NOT NULL,
    population  text        NOT NULL CHECK (population IN ('customers', 'platform')),
    next_run_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    PRIMARY KEY (tenant_id, population)
);
CREATE INDEX churn_jobs_due ON churn_jobs (next_run_at);
SELECT enable_tenant_table('churn_jobs');
-- Scheduling bookkeeping rewritten at every claim, no data of anyone: claims are not audited;
-- the service never deletes a job, so a removal (by hand) is.
DROP TRIGGER audit_row ON churn_jobs;
CREATE TRIGGER audit_row AFTER DELETE ON churn_jobs FOR EACH ROW EXECUTE FUNCTION audit_row();
