-- Job result documents, kept out of Redis. An attempt writes its document in chunks under its
-- lease; completing the job seals one lease's chunks as the result. Every row expires with the
-- job's retention (`jobs.retention`) and is swept after. Ids are UUID strings, times epoch
-- milliseconds (the portable schema of the Any driver).
CREATE TABLE job_results (
    job_id       TEXT   PRIMARY KEY NOT NULL,
    -- The attempt whose chunks are the document.
    lease        BIGINT NOT NULL,
    content_type TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE job_result_chunks (
    job_id     TEXT   NOT NULL,
    lease      BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    data       BYTEA  NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, lease, seq)
);

CREATE INDEX job_results_expiry ON job_results (expires_at);
CREATE INDEX job_result_chunks_expiry ON job_result_chunks (expires_at);
