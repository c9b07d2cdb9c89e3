-- A run's changes by action and reason, kept in the run itself (JSON: [{action, reason_code,
-- reason, count}]): the run page and API summarise a run of any size without reading its
-- changes, and the summary outlives the list when the retention period removes it.
ALTER TABLE sync_runs ADD COLUMN breakdown TEXT;
ALTER TABLE sync_runs ADD COLUMN changes_removed_at TEXT;

UPDATE sync_runs SET breakdown = COALESCE((
    SELECT json_agg(json_build_object('action', action, 'reason_code', reason_code, 'reason', reason, 'count', n)
                    ORDER BY action, reason_code, reason)::text
    FROM (SELECT action, reason_code, reason, COUNT(*) AS n FROM run_changes
          WHERE run_id = sync_runs.id GROUP BY action, reason_code, reason) AS c
), '[]')
WHERE status <> 'running';
