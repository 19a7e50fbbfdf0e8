-- The kernel's indexes on state hold live rows only. Indexed over every
-- row, each agent's ended executions filled a region of their own in
-- (tenant, agent, state), so a batch of state changes for 32 agents wrote
-- 32 of its pages; and a query for ended, unsettled executions walked every
-- ended one. Rows leave these indexes when they end, so they stay as small
-- as the work in flight. A query uses one only when its WHERE clause names
-- the index's condition word for word (src/store/kernel.rs keeps both).

DROP INDEX kernel_executions_agent;
DROP INDEX kernel_executions_live;
DROP INDEX kernel_executions_conn;
DROP INDEX kernel_steps_live;
DROP INDEX kernel_steps_state;

CREATE INDEX kernel_executions_agent ON kernel_executions (tenant_id, agent_id, created_at, id)
    WHERE state IN ('pending', 'running', 'blocked');
CREATE INDEX kernel_executions_live ON kernel_executions (state, deadline_at)
    WHERE state IN ('pending', 'running', 'blocked');
CREATE INDEX kernel_executions_conn ON kernel_executions (conn)
    WHERE conn IS NOT NULL;
-- A tenant's executions, newest first (the list), without sorting them all.
CREATE INDEX kernel_executions_tenant ON kernel_executions (tenant_id, created_at, id);

CREATE INDEX kernel_steps_state ON kernel_steps (state)
    WHERE state IN ('pending', 'dispatched', 'running');
-- Steps waiting for people, a tenant's oldest first.
CREATE INDEX kernel_steps_review ON kernel_steps (tenant_id, created_at)
    WHERE review = 'waiting' AND state = 'pending';
