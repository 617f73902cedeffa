-- The whole v1 schema. Text ids use the C collation so that keyset paging orders them bytewise,
-- the same order SQLite uses.

CREATE TABLE domain_settings (
    domain                    TEXT PRIMARY KEY,
    institution_type          TEXT NOT NULL CHECK (institution_type IN ('PRIMARY_SECONDARY', 'HIGHER_EDUCATION')),
    guardian_access_enabled   BOOLEAN NOT NULL,
    who_can_manage            TEXT NOT NULL CHECK (who_can_manage IN ('VERIFIED_TEACHERS', 'DOMAIN_ADMINS_ONLY')),
    -- Space-separated partner domains (host names hold no spaces).
    allowlisted_domains       TEXT NOT NULL DEFAULT '',
    invitation_ttl_days       INTEGER NOT NULL CHECK (invitation_ttl_days BETWEEN 1 AND 120),
    max_guardians_per_student INTEGER NOT NULL CHECK (max_guardians_per_student BETWEEN 1 AND 20),
    max_students_per_guardian INTEGER NOT NULL CHECK (max_students_per_guardian BETWEEN 1 AND 100),
    default_locale            TEXT NOT NULL CHECK (default_locale IN ('en', 'nl')),
    version                   BIGINT NOT NULL,
    update_time               TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    user_id          TEXT COLLATE "C" PRIMARY KEY,
    domain           TEXT NOT NULL,
    email            TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('STUDENT', 'TEACHER', 'ADMIN')),
    verified_teacher BOOLEAN NOT NULL,
    display_name     TEXT NOT NULL,
    locale           TEXT,
    update_time      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_domain ON users (domain, user_id);

CREATE TABLE courses (
    course_id   TEXT COLLATE "C" PRIMARY KEY,
    domain      TEXT NOT NULL,
    update_time TIMESTAMPTZ NOT NULL
);

CREATE TABLE course_members (
    course_id TEXT COLLATE "C" NOT NULL REFERENCES courses (course_id) ON DELETE CASCADE,
    user_id   TEXT COLLATE "C" NOT NULL,
    role      TEXT NOT NULL CHECK (role IN ('TEACHER', 'STUDENT')),
    PRIMARY KEY (course_id, role, user_id)
);
-- "Which courses does this user teach / attend": the start of every who-teaches-whom lookup.
CREATE INDEX course_members_user ON course_members (user_id, role, course_id);

CREATE TABLE invitations (
    invitation_id         TEXT COLLATE "C" PRIMARY KEY,
    domain                TEXT NOT NULL,
    student_id            TEXT COLLATE "C" NOT NULL,
    invited_email         TEXT NOT NULL,
    state                 TEXT NOT NULL CHECK (state IN ('PENDING', 'ACCEPTED', 'EXPIRED', 'REMOVED')),
    removal_reason        TEXT CHECK ((state = 'REMOVED') = (removal_reason IS NOT NULL)),
    inviter_id            TEXT NOT NULL,
    guardian_id           TEXT COLLATE "C",
    guardian_email        TEXT,
    guardian_display_name TEXT,
    token_hash            TEXT,
    create_time           TIMESTAMPTZ NOT NULL,
    update_time           TIMESTAMPTZ NOT NULL,
    expire_time           TIMESTAMPTZ NOT NULL,
    accept_time           TIMESTAMPTZ,
    version               BIGINT NOT NULL
);
-- One PENDING invitation per (student, address): the database decides races.
CREATE UNIQUE INDEX invitations_one_pending ON invitations (student_id, invited_email) WHERE state = 'PENDING';
-- One link per (student, guardian); also the index-only answer to "is G a guardian of S?".
CREATE UNIQUE INDEX invitations_one_link ON invitations (student_id, guardian_id) WHERE state = 'ACCEPTED';
CREATE UNIQUE INDEX invitations_token ON invitations (token_hash);
-- A student's invitations in id (= creation) order, for keyset paging.
CREATE INDEX invitations_student ON invitations (student_id, invitation_id);
-- A domain's invitations, for student_id "-".
CREATE INDEX invitations_domain ON invitations (domain, invitation_id);
-- Students of a guardian (reverse lookup) and checks by the guardian's email.
CREATE INDEX invitations_links_of_guardian ON invitations (guardian_id, invitation_id) WHERE state = 'ACCEPTED';
CREATE INDEX invitations_links_by_guardian_email ON invitations (guardian_email, student_id) WHERE state = 'ACCEPTED';
-- Per-address counts and lookups by invited address.
CREATE INDEX invitations_invited_email ON invitations (invited_email, student_id);
-- The expiry sweeper's queue.
CREATE INDEX invitations_expiry ON invitations (expire_time) WHERE state = 'PENDING';

CREATE TABLE guardian_events (
    event_id      BIGSERIAL PRIMARY KEY,
    domain        TEXT NOT NULL,
    student_id    TEXT COLLATE "C" NOT NULL,
    invitation_id TEXT COLLATE "C" NOT NULL,
    action        TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    request_id    TEXT,
    create_time   TIMESTAMPTZ NOT NULL
);
CREATE INDEX guardian_events_domain ON guardian_events (domain, event_id);
CREATE INDEX guardian_events_student ON guardian_events (domain, student_id, event_id);

CREATE TABLE outbox (
    message_id        TEXT COLLATE "C" PRIMARY KEY,
    invitation_id     TEXT COLLATE "C",
    recipient         TEXT NOT NULL,
    subject           TEXT NOT NULL,
    body_text         TEXT NOT NULL,
    body_html         TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('QUEUED', 'SENT', 'FAILED')),
    attempts          INTEGER NOT NULL,
    next_attempt_time TIMESTAMPTZ NOT NULL,
    last_error        TEXT,
    create_time       TIMESTAMPTZ NOT NULL,
    sent_time         TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (next_attempt_time, message_id) WHERE status = 'QUEUED';
CREATE INDEX outbox_invitation ON outbox (invitation_id, create_time);

CREATE TABLE idempotency_keys (
    principal    TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    method       TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     BYTEA NOT NULL,
    create_time  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (principal, request_id)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (create_time);
