-- Who belongs to each workspace, as auth announced it (user.signed_up, member.joined,
-- member.removed): owners of contacts and deals and assignees of tasks must be current members.
-- A removed member keeps a row with `active = false`; `changed_at` (the event's time) lets a
-- late, older event change nothing.

CREATE TABLE members (
    tenant_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    active     boolean     NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
SELECT enable_tenant_table('members');
